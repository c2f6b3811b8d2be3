#!/bin/bash
# Sourced by build.sh and srcinfo.sh: banners, a stats snapshot helper, and /app/build and
# /app/target made ready (inputs are uploaded by the engine as root; outputs start empty).
# Written for Arch's and for Debian's makepkg/pacman alike.

# Prints a banner line into the build log.
serene_say() {
  printf '\n:: SERENE :: %s\n\n' "$*"
}

# Prints the first readable file among the arguments (cgroup layouts differ between hosts).
serene_first() {
  local file
  for file in "$@"; do
    if [ -r "$file" ]; then
      printf '%s\n' "$file"
      return 0
    fi
  done
  return 1
}

# Prints this container's resource usage so far as the original's stats JSON, from cgroup v2 or v1
# files. Unknown values are null.
serene_stats() {
  local cg=/sys/fs/cgroup mem='' user='' system='' read='' written='' file
  if [ -f "$cg/cgroup.controllers" ]; then
    # cgroup v2 (memory.peak needs Linux 5.19)
    if file=$(serene_first "$cg/memory.peak"); then mem=$(cat "$file"); fi
    if [ -r "$cg/cpu.stat" ]; then
      user=$(awk '$1 == "user_usec" { print $2 }' "$cg/cpu.stat")
      system=$(awk '$1 == "system_usec" { print $2 }' "$cg/cpu.stat")
    fi
    if [ -r "$cg/io.stat" ]; then
      read=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "rbytes") s += kv[2] } } END { print s + 0 }' "$cg/io.stat")
      written=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "wbytes") s += kv[2] } } END { print s + 0 }' "$cg/io.stat")
    fi
  else
    # cgroup v1
    if file=$(serene_first "$cg/memory/memory.max_usage_in_bytes"); then mem=$(cat "$file"); fi
    if file=$(serene_first "$cg/cpuacct/cpuacct.usage_user" "$cg/cpu,cpuacct/cpuacct.usage_user"); then
      user=$(($(cat "$file") / 1000))
      system=$(($(cat "${file%_user}_sys") / 1000))
    elif file=$(serene_first "$cg/cpuacct/cpuacct.stat" "$cg/cpu,cpuacct/cpuacct.stat"); then
      local hz
      hz=$(getconf CLK_TCK)
      user=$(awk -v hz="$hz" '$1 == "user" { printf "%d", $2 * 1000000 / hz }' "$file")
      system=$(awk -v hz="$hz" '$1 == "system" { printf "%d", $2 * 1000000 / hz }' "$file")
    fi
    if file=$(serene_first "$cg/blkio/blkio.throttle.io_service_bytes_recursive" "$cg/blkio/blkio.throttle.io_service_bytes" "$cg/blkio/blkio.io_service_bytes_recursive"); then
      read=$(awk '$2 == "Read" { s += $3 } END { print s + 0 }' "$file")
      written=$(awk '$2 == "Write" { s += $3 } END { print s + 0 }' "$file")
    fi
  fi
  printf '{"memory_bytes_peak":%s,"cpu_user_us":%s,"cpu_system_us":%s,"io_total_bytes_read":%s,"io_total_bytes_written":%s}\n' \
    "${mem:-null}" "${user:-null}" "${system:-null}" "${read:-null}" "${written:-null}"
}

# Empties pacman's package cache. `pacman -Scc --noconfirm` keeps it (it takes the default answer of
# its question, which is no), so both of its questions are answered yes.
serene_clean_cache() {
  yes 2> /dev/null | sudo pacman -Scc > /dev/null 2>&1 || true
}

set -e

# the original runner's limits: processes of the build user, and open files (fakeroot is very slow
# with a huge open-files limit); the engine's pids limit still applies
ulimit -u 62811 2> /dev/null || true
ulimit -n 1024 2> /dev/null || true

sudo chown -R build:build /app/build /app/target
find /app/target -mindepth 1 -delete
cd /app/build
