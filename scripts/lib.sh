# Shared helpers for the scripts in scripts/. Sourced, not run.

# Fails with a clear message when a command the scripts need is missing.
require() {
    local tool=$1 hint=$2
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: '$tool' is not installed. $hint" >&2
        exit 3
    fi
}

# Prints a section heading, so a long log reads as steps.
step() {
    printf '\n==> %s\n' "$*"
}

require cargo "Install Rust 1.95 or newer (https://rustup.rs), then run this again."
