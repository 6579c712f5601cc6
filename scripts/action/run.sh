#!/usr/bin/env bash
# The run step of the shipgate GitHub Action (action.yml): runs one shipgate command with the
# action's inputs. shipgate itself writes the step outputs (outcome, image_tag, rollback_tag,
# run_id) to $GITHUB_OUTPUT and the summary to $GITHUB_STEP_SUMMARY; the exit code is
# shipgate's (docs/exit-codes.md), so a failed gate fails the job.
#
# Inputs (environment, named INPUT_* because SHIPGATE_* variables are configuration
# overrides): INPUT_COMMAND, INPUT_CONFIG, INPUT_IMAGE_TAG, INPUT_ENVIRONMENT (becomes the
# SHIPGATE_ENVIRONMENT override), INPUT_ARGS (extra arguments, split on spaces).
set -euo pipefail

command="${INPUT_COMMAND:-deploy}"
case "$command" in
  *[!a-z-]*|"") echo "::error::'$command' is not a shipgate command (see shipgate --help)"; exit 2 ;;
esac
args=("$command")
if [ -n "${INPUT_CONFIG:-}" ]; then args+=(--config "$INPUT_CONFIG"); fi
if [ -n "${INPUT_IMAGE_TAG:-}" ]; then args+=(--image-tag "$INPUT_IMAGE_TAG"); fi
if [ -n "${INPUT_ENVIRONMENT:-}" ]; then export SHIPGATE_ENVIRONMENT="$INPUT_ENVIRONMENT"; fi
# shellcheck disable=SC2206 # extra arguments are words, as on a command line
extra=(${INPUT_ARGS:-})
exec shipgate "${args[@]}" "${extra[@]}"
