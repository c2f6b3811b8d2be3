#!/bin/bash
# Entrypoint of a build container: upgrade, prepare commands, dependencies, makepkg, outputs in
# /app/target (.SRCINFO as reported after the build, stats before and after the build, packages).
source "$(dirname "$0")/prelude.sh"

serene_say "upgrading the system"
# a Debian base has no official repositories: without our own, there is nothing to sync or install
repositories=$(pacman-conf --repo-list)
if [ -n "$repositories" ]; then
  sudo pacman -Suy --noconfirm
else
  echo "no package repositories configured"
fi

serene_say "running prepare commands"
# shellcheck disable=SC1091
source ./serene-prepare.sh

if [ -n "$repositories" ]; then
  serene_say "installing dependencies"
  makepkg --syncdeps --noprepare --nobuild --noconfirm
fi
# (without repositories, the build's own dependency check reports what is missing)

serene_stats > ../target/.stats-before.json
serene_say "building package"
# shellcheck disable=SC2046 # the flags file holds words such as `--nocheck --skippgpcheck `
makepkg --force --noconfirm $(cat ./makepkg-flags)
serene_stats > ../target/.stats-after.json

makepkg --printsrcinfo > ../target/.SRCINFO
if [ -n "$repositories" ]; then serene_clean_cache; fi
serene_say "build finished"
