# Thin recipes over cargo. Logic belongs in Rust (tests, or the mxsim CLI).
# `just` is optional: every recipe is one cargo command you can type yourself.

# Format check, lint, test: what CI runs (.ci/run).
default: ci

ci:
    bash .ci/run

test:
    cargo test --workspace --locked

lint:
    cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
    cargo fmt --all

# The main job: every scenario × every policy (pass `--format markdown` for a mailing-list post).
compare *args="":
    cargo run --release --locked -p mxsim-cli -- compare {{args}}

# List the policies, or print one.
policies *name="":
    cargo run --release --locked -p mxsim-cli -- policies {{name}}

# Check every shipped scenario's expectations.
check *paths="scenarios":
    cargo run --release --locked -p mxsim-cli -- check {{paths}}

# Print the trace of one scenario under one policy, for every equal-preference order.
run file policy="rfc5321":
    cargo run --release --locked -p mxsim-cli -- run {{file}} --policy {{policy}} --all-orders

# Runs per second on one core (release build).
bench file="scenarios/seed/base-case.yaml" policy="rfc5321" runs="200000":
    cargo run --release --locked -p mxsim-cli -- bench {{file}} --policy {{policy}} --runs {{runs}}

# Rewrite snapshots in place; review `git diff` before committing (no cargo-insta needed).
snap-accept:
    INSTA_UPDATE=always cargo test --workspace --locked
