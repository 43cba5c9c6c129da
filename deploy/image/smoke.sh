#!/usr/bin/env bash
# Builds the image from the Dockerfile as it is and tries it: the container's /health answers, its
# HEALTHCHECK passes, `chat token` runs in it, and a client gets the web page, creates a room over
# REST, sends and receives a message over a WebSocket and finds it in the history
# (smoke-client.mjs). Stops the container with SIGTERM and expects a clean exit.
#
# Usage: deploy/image/smoke.sh            (CI: when podman is installed; test/image.e2e.test.ts)
# Needs: podman, runc, the base image (deploy/image/build-base.sh makes a local stand-in when no
# registry is reachable), node 20 with this repository's node_modules (the client uses ws).
# Environment: CHAT_IMAGE (default localhost/chat-svc:smoke), SMOKE_PORT (default: a free one),
#              PODMAN (see podman.sh), SMOKE_NO_BUILD=1 to try an image built before.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/deploy/image/podman.sh"
IMAGE=${CHAT_IMAGE:-localhost/chat-svc:smoke}
BASE=$(base_image "$ROOT/Dockerfile")
NAME="chat-smoke-$$"

if [ "${SMOKE_NO_BUILD:-}" != 1 ]; then
  $PODMAN image exists "$BASE" || { echo "smoke: base image $BASE is missing (deploy/image/build-base.sh builds a stand-in)" >&2; exit 1; }
  echo "smoke: building $IMAGE from $BASE"
  start=$(date +%s)
  # docker format keeps the HEALTHCHECK; --pull=never: the base is local, no registry is asked
  $PODMAN build --format docker --pull=never --network host "${PODMAN_LIMITS[@]}" \
    --build-arg GIT_COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)" \
    -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT"
  echo "smoke: built in $(( $(date +%s) - start )) s, $($PODMAN image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
fi

user=$($PODMAN image inspect "$IMAGE" --format '{{.Config.User}}')
[ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || { echo "smoke: the image runs as '$user', not a non-root user" >&2; exit 1; }

PORT=${SMOKE_PORT:-$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}
SECRET=$(node -e 'console.log(require("crypto").randomBytes(36).toString("base64url"))')
cleanup() { $PODMAN rm -f -t 1 "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "smoke: running chat all on 127.0.0.1:$PORT"
# Without systemd podman logs that it cannot schedule the periodic healthcheck timer; the check
# itself is run below with `podman healthcheck run`.
$PODMAN run -d --name "$NAME" --network host "${PODMAN_LIMITS[@]}" \
  -e HOST=127.0.0.1 -e PORT="$PORT" -e JWT_SECRET="$SECRET" "$IMAGE" all >/dev/null

for i in $(seq 1 120); do
  if node -e "fetch('http://127.0.0.1:$PORT/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then break; fi
  if [ "$($PODMAN inspect "$NAME" --format '{{.State.Running}}')" != true ]; then
    $PODMAN logs "$NAME" >&2; echo "smoke: the container exited" >&2; exit 1
  fi
  [ "$i" = 120 ] && { $PODMAN logs "$NAME" >&2; echo "smoke: /health did not answer in 60 s" >&2; exit 1; }
  sleep 0.5
done
echo "smoke: /health answers"
$PODMAN healthcheck run "$NAME" && echo "smoke: the image's HEALTHCHECK passes"

TOKEN=$($PODMAN exec -e JWT_SECRET="$SECRET" "$NAME" node bin/chat.js token smoke-user --name Smoke)
node "$ROOT/deploy/image/smoke-client.mjs" "http://127.0.0.1:$PORT" "$TOKEN"

$PODMAN stop -t 30 "$NAME" >/dev/null
code=$($PODMAN inspect "$NAME" --format '{{.State.ExitCode}}')
[ "$code" = 0 ] || { $PODMAN logs "$NAME" | tail -20 >&2; echo "smoke: exit status $code after SIGTERM" >&2; exit 1; }
echo "smoke: stopped cleanly on SIGTERM"
echo "smoke: ok"
