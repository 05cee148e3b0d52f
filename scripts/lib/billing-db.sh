# shellcheck shell=bash
# Create a throwaway database with the billing example's schema, seed and reader/writer roles.
# Needs ADMIN (admin URL) and BASE (URL without the database); sets nothing else.
billing_db_create() {
  local db="$1" example="$2"
  psql "$ADMIN" -q -c "CREATE DATABASE $db" >/dev/null
  for role in synapsor_reader synapsor_writer; do
    psql "$BASE/$db" -q -c "DO \$\$ BEGIN CREATE ROLE $role LOGIN PASSWORD '${role}_password'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END \$\$" >/dev/null
  done
  sed -e '/^DO \$\$/,/^\$\$;/d' -e "s/synapsor_billing_app_handler/$db/" "$example/schema.sql" | psql "$BASE/$db" -q >/dev/null
  psql "$BASE/$db" -q -f "$example/seed.sql" >/dev/null
}
