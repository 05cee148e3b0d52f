# Sourced by scripts that need a package's npm dependencies.
npm_install() { # dir: `npm ci` when the lockfile is newer than node_modules, quietly
  local dir="$1"
  if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
