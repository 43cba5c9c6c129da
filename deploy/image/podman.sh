# Sourced by the image scripts: how podman runs on a machine like this one (rootful, no systemd,
# no overlay support): vfs storage, runc (crun fails here), cgroupfs, raised ulimits.
# Override with PODMAN="podman ..." for a machine where the defaults work.
PODMAN=${PODMAN:-"podman --storage-driver vfs --runtime runc --cgroup-manager cgroupfs"}
PODMAN_LIMITS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

# The base image the Dockerfile builds FROM (its first FROM line), fully qualified the way podman
# stores a Docker Hub short name.
base_image() {
  local from
  from=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$1")
  case "$from" in
    */*/*) echo "$from" ;;
    */*) echo "docker.io/$from" ;;
    *) echo "docker.io/library/$from" ;;
  esac
}
