#!/bin/bash
# Entrypoint of the .SRCINFO generation container: prints the .SRCINFO of the uploaded sources
# into /app/target/.SRCINFO.
source "$(dirname "$0")/prelude.sh"

makepkg --printsrcinfo > ../target/.SRCINFO
