# Sourced by the scripts: `say_as WHO MESSAGE...` prints a status line on stderr, with WHO in
# bold only when stderr is a terminal, so that logs and CI get plain text.
say_as() {
  local who=$1
  shift
  if [ -t 2 ]; then
    printf '\033[1m%s:\033[0m %s\n' "$who" "$*" >&2
  else
    printf '%s: %s\n' "$who" "$*" >&2
  fi
}
