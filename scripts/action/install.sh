#!/usr/bin/env bash
# The install step of the shipgate GitHub Action (action.yml): puts a pinned shipgate on the
# runner. It downloads the release archive for the runner's OS and architecture and its
# SHA-256 file, checks the archive against it, and unpacks it under $RUNNER_TEMP; when the
# release has no archive for this runner (or the download fails), it builds the same version
# with `cargo install --locked`. A checksum that does not match stops the job: nothing is
# installed. The directory goes to $GITHUB_PATH for the later steps.
#
# Inputs (environment): INPUT_VERSION (e.g. 0.1.0), RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP,
# GITHUB_PATH; INPUT_DOWNLOAD_BASE overrides where releases are read from (a mirror, or a
# file:// directory in tests).
set -euo pipefail

version="${INPUT_VERSION:?the action needs a version}"
version="${version#v}"
case "$version" in
  *[!0-9A-Za-z.+-]*|"") echo "::error::shipgate version '$version' is not a version number (e.g. 0.1.0)"; exit 2 ;;
esac
case "${RUNNER_OS:-Linux}/${RUNNER_ARCH:-X64}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  *) target="" ;;
esac
dest="${RUNNER_TEMP:?}/shipgate-$version"
base="${INPUT_DOWNLOAD_BASE:-https://github.com/shipgate/shipgate/releases/download}"

installed=""
if [ -n "$target" ]; then
  archive="shipgate-$version-$target.tar.gz"
  work="$(mktemp -d)"
  if curl --fail --silent --show-error --location --retry 3 --max-time 120 \
      -o "$work/$archive" "$base/v$version/$archive" &&
     curl --fail --silent --show-error --location --retry 3 --max-time 60 \
      -o "$work/$archive.sha256" "$base/v$version/$archive.sha256"; then
    expected="$(cut -d ' ' -f 1 < "$work/$archive.sha256")"
    actual="$(sha256sum "$work/$archive" | cut -d ' ' -f 1)"
    if [ "$expected" != "$actual" ]; then
      echo "::error::shipgate $version for $target: the archive's SHA-256 is $actual, its checksum file says $expected; not installing it"
      rm -rf "$work"
      exit 1
    fi
    mkdir -p "$dest/bin"
    tar -xzf "$work/$archive" -C "$dest/bin" shipgate
    installed="release archive $archive (SHA-256 $actual)"
  else
    echo "::warning::no shipgate $version release archive for $target could be downloaded; building it with cargo install"
  fi
  rm -rf "$work"
fi
if [ -z "$installed" ]; then
  cargo install --locked --quiet --version "$version" --root "$dest" shipgate
  installed="cargo install --locked shipgate@$version"
fi
"$dest/bin/shipgate" --version
echo "$dest/bin" >> "${GITHUB_PATH:?}"
echo "shipgate $version installed from $installed"
