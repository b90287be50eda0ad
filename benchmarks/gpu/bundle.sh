#!/usr/bin/env bash
# Build an offline bundle of Ray (with Tune) and pydantic for the GPU machine, which has no
# network and no ray/pydantic, but has torch, numpy, pandas, pyarrow, fsspec, pyyaml, requests,
# click, filelock, msgpack, packaging, protobuf, aiohttp, attrs, psutil, grpcio, ...
#
#     bash benchmarks/gpu/bundle.sh                 # cp312 bundle into .gpu-data/wheels
#     PYVER=3.11 OUT=.gpu-data/wheels-py311 bash benchmarks/gpu/bundle.sh
#     WITH_OPTUNA=1 bash benchmarks/gpu/bundle.sh   # also optuna and its deps (smcl_tune.study.runner imports it)
#     WITH_STUDY=1 bash benchmarks/gpu/bundle.sh    # also all that `smcl-tune run` needs (MLflow, Optuna, ...)
#
# Everything carried to the GPU machine must fit in 64 MiB, so Ray's 79 MB wheel is repacked:
# the Java jar, the dashboard's JS build, rllib, serve and llm are dropped, the ELF binaries are
# stripped of symbols, and the tree goes into one solid tar.xz (gcs_server, raylet and _raylet.so
# share most of their code, which a solid xz archive compresses once). The other packages stay
# wheels. On the GPU machine:
#
#     bash .gpu-data/wheels/install.sh /tmp/site [PYTHON]   # then PYTHONPATH=/tmp/site python ...
set -euo pipefail

PYVER="${PYVER:-3.12}"
OUT="${OUT:-.gpu-data/wheels}"
WITH_OPTUNA="${WITH_OPTUNA:-0}"
WITH_STUDY="${WITH_STUDY:-0}"
PY="${PY:-python3}"          # any local python with pip, used only to download and repack
VENV_PY=".venv/bin/python"   # the project's venv: the source of the pinned versions

# Packages the GPU machine lacks. Versions follow the project's venv where it has them, so the
# bundle matches what the tests run against; the fallbacks are the versions at writing time.
PKGS=(
  ray=2.60.0
  pydantic=2.14.4 pydantic-core=2.50.5 annotated-types=0.8.0 typing-inspection=0.4.5
  typing-extensions=4.16.0   # pydantic-core needs >=4.16; the GPU machine's version is unknown
  jsonschema=4.26.0 jsonschema-specifications=2025.9.1 referencing=0.37.0 rpds-py=2026.9.1
)
if [[ "$WITH_OPTUNA" == 1 ]]; then
  PKGS+=(optuna=5.0.0 alembic=1.20.1 sqlalchemy=2.1.9 mako=1.4.3 markupsafe=3.0.4
         colorlog=6.12.0 tqdm=4.70.1)
fi

# Parts of the ray tree not needed for ray.init(include_dashboard=False) + ray.tune.
DROP=(
  ray/jars                      # Java worker support (31 MB)
  ray/dashboard/client/build    # dashboard web UI (JS)
  ray/rllib ray/serve ray/llm
)

specs=()
for kv in "${PKGS[@]}"; do
  name="${kv%%=*}"; ver="${kv#*=}"
  if [[ -x "$VENV_PY" ]]; then
    v=$("$VENV_PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name")
    [[ -n "$v" ]] && ver="$v"
  fi
  specs+=("$name==$ver")
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "downloading for cp${PYVER/./}: ${specs[*]}"
"$PY" -m pip download -q --no-deps --only-binary=:all: \
  --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$tmp/dl" "${specs[@]}"

rm -rf "$OUT"
mkdir -p "$OUT"

# --- ray: unpack, prune, strip, rewrite RECORD, pack as one solid tar.xz ---
raywhl=$(ls "$tmp"/dl/ray-*.whl)
tree="$tmp/ray"
mkdir -p "$tree"
"$PY" -m zipfile -e "$raywhl" "$tree"
for d in "${DROP[@]}"; do rm -rf "${tree:?}/$d"; done
find "$tree" -name '*.map' -delete
# zipfile -e loses the mode bits; restore them for the executables from the wheel's own entries.
"$PY" - "$raywhl" "$tree" <<'EOF'
import os, sys, zipfile
whl, tree = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        mode = (info.external_attr >> 16) & 0o777
        p = os.path.join(tree, info.filename)
        if mode and os.path.isfile(p):
            os.chmod(p, mode)
EOF
if command -v strip >/dev/null; then
  # Symbols only serve crash stack traces; stripping saves ~40 % on the three big binaries.
  while IFS= read -r -d '' f; do
    if head -c4 "$f" | grep -q $'\x7fELF'; then strip --strip-unneeded "$f"; fi
  done < <(find "$tree/ray" -type f \( -name '*.so' -o -name '*.so.*' -o -perm -u+x \) -print0)
else
  echo "warning: no strip; the bundle will be larger" >&2
fi
"$PY" - "$tree" <<'EOF'
# RECORD listing only the files that remain, with their new hashes.
import base64, glob, hashlib, os, sys
tree = sys.argv[1]
(info,) = glob.glob(os.path.join(tree, "ray-*.dist-info"))
record = os.path.join(info, "RECORD")
rows = []
for root, _, files in os.walk(tree):
    for f in files:
        p = os.path.join(root, f)
        rel = os.path.relpath(p, tree)
        if p == record:
            continue
        data = open(p, "rb").read()
        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={h},{len(data)}")
rows.sort()
rows.append(os.path.relpath(record, tree) + ",,")
open(record, "w").write("\n".join(rows) + "\n")
EOF
rayver=$(basename "$raywhl" | cut -d- -f2)
# The big binaries go next to each other so xz's 64 MiB window spans them.
(
  cd "$tree"
  find . -type f ! -path ./ray/_raylet.so ! -path ./ray/core/src/ray/gcs/gcs_server \
    ! -path ./ray/core/src/ray/raylet/raylet | LC_ALL=C sort
  printf '%s\n' ./ray/_raylet.so ./ray/core/src/ray/gcs/gcs_server ./ray/core/src/ray/raylet/raylet
) > "$tmp/files"
echo "compressing ray (xz -9e, a minute or two)"
tar -C "$tree" --owner=0 --group=0 --numeric-owner -cf - -T "$tmp/files" \
  | xz -9e -T1 > "$OUT/ray-$rayver-cp${PYVER/./}-stripped.tar.xz"

# --- the other packages stay wheels ---
find "$tmp/dl" -name '*.whl' ! -name 'ray-*' -exec cp {} "$OUT/" \;

# --- WITH_STUDY: MLflow, Optuna, Plotly (the HTML leaderboard) and the rest of their requirements that the GPU image lacks ---
# Resolved by pip for the target Python, less what image_packages.txt says the image has and what
# the wheels above already bring; installed into one tree (MLflow's web UI dropped: the store is
# read back here) and packed as one solid tar.xz.
if [[ "$WITH_STUDY" == 1 ]]; then
  study_specs=()
  for name in mlflow optuna plotly; do
    v=$("$VENV_PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
    study_specs+=("$name==$v")
  done
  echo "resolving for cp${PYVER/./}: ${study_specs[*]}"
  "$PY" -m pip download -q --only-binary=:all: \
    --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$tmp/study-dl" "${study_specs[@]}"
  have="$(dirname "$0")/image_packages.txt"
  # MLflow's server, git and model-format requirements: a study writes its sqlite store through
  # MLflow's client alone, and the whole carried tree must stay under 64 MiB.
  skip=" gunicorn uvicorn flask flask-cors itsdangerous blinker graphene graphql-core graphql-relay huey docker skops gitpython gitdb smmap prettytable "
  wheels=()
  for wheel in "$tmp"/study-dl/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1 | tr 'A-Z_.' 'a-z--')
    if [[ "$skip" == *" $name "* ]] || grep -qx "$name" "$have" || ls "$OUT" | tr 'A-Z_' 'a-z-' | grep -q "^$name-[0-9]"; then
      continue
    fi
    wheels+=("$wheel")
  done
  echo "study packages carried: $(printf '%s\n' "${wheels[@]}" | xargs -n1 basename | cut -d- -f1 | tr '\n' ' ')"
  if (( ${#wheels[@]} == 0 )); then
    echo "the GPU image has every package a study needs; no study archive" >&2
  else
    "$PY" -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version "$PYVER" \
      --implementation cp --target "$tmp/study" "${wheels[@]}"
    # the web UIs' builds and Plotly's Jupyter extension
    rm -rf "$tmp/study/mlflow/server/js" "$tmp/study/bin" "$tmp/study/share" "$tmp/study/plotly/labextension"
    find "$tmp/study" -name '__pycache__' -prune -exec rm -rf {} +
    echo "compressing the study packages (xz -9e)"
    tar -C "$tmp/study" --owner=0 --group=0 --numeric-owner -cf - . | xz -9e -T1 > "$OUT/study-cp${PYVER/./}.tar.xz"
  fi
fi

echo "$PYVER" > "$OUT/PYVER"
cat > "$OUT/install.sh" <<'EOF'
#!/usr/bin/env bash
# Install this bundle into a target dir: bash install.sh TARGET [PYTHON]; then PYTHONPATH=TARGET.
set -euo pipefail
target="${1:?usage: install.sh TARGET_DIR [PYTHON]}"
py="${2:-python3}"
here="$(cd "$(dirname "$0")" && pwd)"
want="$(cat "$here/PYVER")"
have="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$want" != "$have" ]]; then
  echo "install.sh: bundle is for Python $want but $py is $have" >&2
  exit 1
fi
mkdir -p "$target"
# A wheel is a zip of import-ready files: unpacking it needs no pip (some venvs have none).
for wheel in "$here"/*.whl; do
  "$py" -m zipfile -e "$wheel" "$target"
done
rm -rf "$target/ray" "$target"/ray-*.dist-info
tar -xJf "$here"/ray-*.tar.xz -C "$target" --no-same-owner
for archive in "$here"/study-*.tar.xz; do
  [[ -f "$archive" ]] && tar -xJf "$archive" -C "$target" --no-same-owner
done
echo "installed into $target"
EOF
chmod +x "$OUT/install.sh"

ls -l "$OUT"
du -sh "$OUT"
