/**
 * @serene/plugin-signing: not implemented yet (see the project's issues). This package exists so the
 * workspace layout is complete; it exports nothing that claims to work.
 */
export {};
