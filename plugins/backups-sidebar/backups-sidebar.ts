/**
 * The Backups sidebar, an editor plugin (package.json node-red.plugins). This runtime side adds the
 * admin endpoints (routes.ts); backups-sidebar.html, beside the built file, adds the editor tab.
 */
import type { PluginAPI } from './red-admin';
import { registerRoutes } from './routes';

export = function register(RED: PluginAPI): void {
  registerRoutes(RED);
  RED.plugins.registerPlugin('volume-backups-sidebar', { type: 'volume-backup-sidebar' });
};
