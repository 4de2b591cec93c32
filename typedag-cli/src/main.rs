//! The `typedag` command: inspect and tidy the store that typedag programs cache their
//! outputs in, and deliver values to their signals, without the programs.
//!
//! Each command opens the store (taking its lock, so it waits for no running program and a
//! running program cannot open it meanwhile), prints what it found or did, and exits 0, or
//! prints `error: …` and exits 1. Usage errors exit 2, as clap does.

mod error;
mod explain;
mod forget;
mod gc;
mod human;
mod session;
mod signal;
mod status;
mod view;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use dag_runtime::store::{Address, AddressError};

use crate::error::Error;
use crate::session::Session;

/// Inspect and tidy a typedag store: the records and outputs that typedag programs keep
/// between runs.
#[derive(Parser)]
#[command(name = "typedag", version)]
struct Cli {
    /// The store: a directory, or a postgres:// address [default: $TYPEDAG_STORE, else
    /// .typedag]
    #[arg(long, global = true, value_name = "DIR|URL", value_parser = Address::parse)]
    store: Option<Address>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One line per graph; or, given a graph, one line per node
    Status {
        /// The graph to show node by node
        graph: Option<String>,
    },
    /// What the store knows about each node of a graph, and what a rerun would do
    Explain {
        /// The graph
        graph: String,
        /// Only this node
        node: Option<String>,
    },
    /// Drop the records of some nodes of a graph, or of the whole graph
    ///
    /// The forgotten nodes run again on the next run. Their dependents keep their records:
    /// they run again only if the forgotten nodes then produce other bytes.
    Forget {
        /// The graph
        graph: String,
        /// The nodes whose records to drop [default: the whole graph, with its saved shape]
        nodes: Vec<String>,
    },
    /// Deliver a value, as JSON, to a signal node of a graph
    ///
    /// With the embedded store (while no program runs on it), the next run of the graph takes
    /// it; with PostgreSQL, a run waiting for it takes it at once. A value replaces one not
    /// yet taken; a value that is not of the signal's type fails the node when taken.
    Signal {
        /// The graph
        graph: String,
        /// The signal: the id of a `signal::<Type>()` node
        name: String,
        /// The value, as JSON: '{"by": "ada"}', '"text"', '42', 'true'
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Drop the records of nodes that are no longer in their graph
    Gc {
        /// Also drop every record that finished longer ago than AGE (like 7d, 12h, 30m, 45s
        /// or 1.5h), and the distributed runs that started before then and have ended
        /// (finished, or stopped at a failure)
        #[arg(long, value_name = "AGE", value_parser = dag_duration::parse)]
        older_than: Option<Duration>,
        /// Print what would be dropped, and drop nothing
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let address = match store_address(cli.store) {
        Ok(address) => address,
        Err(AddressError::Empty) => Cli::command()
            .error(
                clap::error::ErrorKind::InvalidValue,
                "TYPEDAG_STORE is set but empty: unset it, set it to a directory or a postgres:// address, or pass --store",
            )
            .exit(),
        Err(e) => Cli::command()
            .error(
                clap::error::ErrorKind::InvalidValue,
                format!("TYPEDAG_STORE: {e}"),
            )
            .exit(),
    };
    let delivering = matches!(cli.command, Command::Signal { .. });
    let done = Session::open(&address).and_then(|session| run(&session, cli.command));
    match done.map_err(|e| if delivering { e.delivering() } else { e }) {
        Ok(text) => print(&text),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--store`, else `$TYPEDAG_STORE`, else the default directory: the store a program
/// would use, so that `typedag` run beside a program sees its store.
fn store_address(flag: Option<Address>) -> Result<Address, AddressError> {
    match flag {
        Some(address) => Ok(address),
        None => Address::from_env().unwrap_or_else(|| Ok(Address::default())),
    }
}

fn run(session: &Session, command: Command) -> Result<String, Error> {
    match command {
        Command::Status { graph: None } => status::graphs(session),
        Command::Status { graph: Some(g) } => status::graph(session, &g),
        Command::Explain { graph, node } => explain::run(session, &graph, node.as_deref()),
        Command::Forget { graph, nodes } => forget::run(session, &graph, &nodes),
        Command::Signal { graph, name, value } => signal::run(session, &graph, &name, &value),
        Command::Gc {
            older_than,
            dry_run,
        } => gc::run(
            session,
            &gc::Options {
                older_than,
                dry_run,
            },
        ),
    }
}

/// Prints the command's output. A reader that went away (`typedag status | head`) is not an
/// error: the work is done, and what was read is what was wanted.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
