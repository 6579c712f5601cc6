#!/usr/bin/env bash
# A stand-in for helm that records its arguments and answers from files in $FAKE_HELM_DIR:
# version, history.json, values.json / values-REVISION.json, and for upgrade, rollback and
# uninstall: NAME.stderr (fail with it), NAME.sleep (take that long; SIGTERM is handled the way
# helm handles it: "Release … has been cancelled", exit 1).
d="$FAKE_HELM_DIR"
printf '%s\n' "$*" >> "$d/argv.log"
case "$1" in
  version) cat "$d/version" ;;
  history)
    if [ -f "$d/history.json" ]; then cat "$d/history.json"; else echo "Error: release: not found" >&2; exit 1; fi ;;
  get)
    rev=""
    prev=""
    for a in "$@"; do [ "$prev" = "--revision" ] && rev="$a"; prev="$a"; done
    f="$d/values-$rev.json"; [ -f "$f" ] || f="$d/values.json"
    if [ -f "$f" ]; then cat "$f"; else echo '{}'; fi ;;
  upgrade|rollback|uninstall)
    if [ -f "$d/$1.sleep" ]; then
      sleep "$(cat "$d/$1.sleep")" >/dev/null 2>&1 &
      trap 'kill $! 2>/dev/null; echo "Release has been cancelled." >&2; exit 1' TERM
      wait
    fi
    if [ -f "$d/$1.stderr" ]; then cat "$d/$1.stderr" >&2; exit 1; fi
    echo '{"name":"demo","version":2,"info":{"status":"deployed"}}' ;;
  *) echo "fake helm: unexpected $1" >&2; exit 1 ;;
esac
