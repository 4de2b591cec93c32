"""Compares an example's stdout with the `Expected output:` block in its header.

A header line `//! ```text` after `Expected output:` opens the block and `//! ```` closes
it. A line `...` in the block matches any number of lines. Examples without the block are
only required to exit successfully.
"""
import re
import sys

source, output = sys.argv[1], sys.argv[2]
header = [l[4:] if l.startswith("//! ") else l[3:] for l in open(source) if l.startswith("//!")]
try:
    start = next(i for i, l in enumerate(header) if l.strip() == "Expected output:")
except StopIteration:
    print(f"{source}: no expected output in header; ran fine")
    sys.exit(0)
block = header[start + 1 :]
opened = next(i for i, l in enumerate(block) if l.strip().startswith("```"))
closed = next(i for i, l in enumerate(block[opened + 1 :], opened + 1) if l.strip() == "```")
expected = [l.rstrip("\n") for l in block[opened + 1 : closed]]
actual = [l.rstrip("\n") for l in open(output)]

pattern = "".join(r"(?:.*\n)*?" if l.strip() == "..." else re.escape(l) + r"\n" for l in expected)
if re.fullmatch(pattern, "".join(l + "\n" for l in actual)):
    print(f"{source}: output matches its header")
    sys.exit(0)
print(f"{source}: output differs from its header")
print("--- expected"); print("\n".join(expected))
print("--- actual"); print("\n".join(actual))
sys.exit(1)
