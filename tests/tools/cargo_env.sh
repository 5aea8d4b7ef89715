# Sourced by demo/run and tests/run. `sudo` resets PATH, so a Rust toolchain installed with
# rustup by the user who ran sudo is not found. Use that user's toolchain (read only, through
# RUSTUP_HOME) and keep root's own CARGO_HOME, so nothing root-owned lands in the user's
# ~/.cargo.
if ! command -v cargo >/dev/null 2>&1 && [ -n "${SUDO_USER:-}" ]; then
    sudo_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -n "$sudo_home" ] && [ -x "$sudo_home/.cargo/bin/cargo" ]; then
        export PATH="$sudo_home/.cargo/bin:$PATH"
        export RUSTUP_HOME="${RUSTUP_HOME:-$sudo_home/.rustup}"
        echo "using $SUDO_USER's Rust toolchain ($sudo_home/.cargo/bin, not on root's PATH under sudo)" >&2
    fi
    unset sudo_home
fi
