/**
 * @serene/plugin-dashboard: the web dashboard of serene, a single-page app served from the
 * server's own origin (every asset bundled: no CDN, works offline), talking to the same REST API
 * and live streams as the `serene` command.
 */
export {
  createDashboard,
  type Dashboard,
  type DashboardOptions,
  DEFAULT_ASSETS_DIR,
  NOT_BUILT_MESSAGE,
} from './dashboard.js';
