#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts a local mail stack (Postfix + Dovecot on
# loopback ports 20024-20993) and runs the agent against it with config/demo.toml in the
# foreground. Ctrl-C stops the agent and the mail stack.
set -euo pipefail
cd "$(dirname "$0")/.."

# The path is fixed because config/demo.toml names the stack's CA file in it.
stack_dir=/tmp/mailcanary-demo
listen=127.0.0.1:9725

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target mailcanary

MAILSTACK_PORT_BASE=20000 bash tests/stack/mailstack.sh start "$stack_dir"
trap 'bash tests/stack/mailstack.sh stop "$stack_dir"' EXIT

cat <<TXT

mailcanary is probing the local mail stack (config/demo.toml).
  metrics:      http://$listen/metrics
  status page:  http://$listen/
  transcript:   http://$listen/results?target=local-submission&probe=connect
  one-shot:     build/release/agent/mailcanary --config.file=config/demo.toml --probe=local-mx
Press Ctrl-C to stop.

TXT
build/release/agent/mailcanary --config.file=config/demo.toml --web.listen-address="$listen" || true
