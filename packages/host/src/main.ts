#!/usr/bin/env node
// The server's entry point. The host (environment configuration, composition of the plugins,
// HTTP server) is the subject of a later issue; until it lands, say so plainly instead of
// pretending to serve.
process.stderr.write(
  'serene: the server host is not implemented yet (see the issue "The host, its container image, and the end-to-end test").\n' +
    'What works today: the native pacman repository engine (@serene/core) and `npx serene repo add|remove`.\n',
);
process.exit(1);
