# shellcheck shell=bash
# The node's configuration files are templates (templates/*.tmpl) with ${NAME} placeholders,
# filled by render_template from an explicit NAME=VALUE list. No other tool is needed (envsubst
# is not on every machine), and nothing is left to chance: a placeholder without a value, a
# value without a placeholder, or any other "$" in a template (a mistyped placeholder) is an
# error, never an empty string in a config file. Values are copied as they are: nothing in them
# is expanded.

# render_template TEMPLATE NAME=VALUE...: print TEMPLATE with every ${NAME} replaced by VALUE.
# Exit status 1, with the reason on stderr, when the template and the values do not match.
render_template() {
  local template="$1" pair name text rest out="" literal=""
  shift
  local -A values=() used=()
  for pair in "$@"; do
    name="${pair%%=*}"
    if [[ "$pair" != *=* || ! "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
      render_error "$template" "argument '$pair' is not NAME=VALUE"
      return 1
    fi
    values[$name]="${pair#*=}"
  done
  if [[ ! -f "$template" || ! -r "$template" ]]; then
    render_error "$template" "no such readable file"
    return 1
  fi
  # read -d '' takes the whole file, trailing newlines included (a $(...) would drop them).
  IFS= read -r -d '' text < "$template" || true
  rest="$text"
  local placeholder='\$\{([A-Za-z_][A-Za-z0-9_]*)\}'
  while [[ "$rest" =~ $placeholder ]]; do
    name="${BASH_REMATCH[1]}"
    if [[ ! -v "values[$name]" ]]; then
      render_error "$template" "no value for \${$name} (pass $name=VALUE)"
      return 1
    fi
    literal+="${rest%%"${BASH_REMATCH[0]}"*}"
    out+="${rest%%"${BASH_REMATCH[0]}"*}${values[$name]}"
    rest="${rest#*"${BASH_REMATCH[0]}"}"
    used[$name]=1
  done
  literal+="$rest"
  out+="$rest"
  if [[ "$literal" == *'$'* ]]; then
    render_error "$template" "a '\$' outside a \${NAME} placeholder (a template has no other '\$')"
    return 1
  fi
  for name in "${!values[@]}"; do
    if [[ ! -v "used[$name]" ]]; then
      render_error "$template" "no placeholder \${$name} for the value $name"
      return 1
    fi
  done
  printf '%s' "$out"
}

render_error() { printf '%s: template %s: %s\n' "${0##*/}" "$1" "$2" >&2; }
