// Node-RED loads this (package.json node-red.plugins); the driver-config node finds the backend by its type.
module.exports = function (RED) {
  RED.plugins.registerPlugin('volume-backup-sharded', { type: 'volume-backup-backend', backend: require('./index') });
};
