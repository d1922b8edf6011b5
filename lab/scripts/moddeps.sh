#!/bin/bash
# moddeps.sh MODULE_DIR NAME... - print the modules.dep paths of NAME... and everything they need,
# dependencies first (the order insmod must follow).
set -euo pipefail
dir=$1; shift
declare -A done_
order=()
add() {
    local path=$1 dep
    [ -n "${done_[$path]:-}" ] && return 0
    done_[$path]=1
    for dep in $(awk -F': *' -v p="$path" '$1 == p { print $2 }' "$dir/modules.dep"); do add "$dep"; done
    order+=("$path")
}
for name in "$@"; do
    pattern=${name//[-_]/[-_]}
    path=$(grep -oE "^[^:]*/${pattern}\.ko(\.[a-z]+)?:" "$dir/modules.dep" | head -1 | tr -d :)
    [ -n "$path" ] || { echo "moddeps: module $name not in $dir/modules.dep" >&2; exit 1; }
    add "$path"
done
printf '%s\n' "${order[@]}"
