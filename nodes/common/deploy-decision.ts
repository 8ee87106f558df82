/**
 * What a stop of the flows means for a node's running work, decided from Node-RED's "flows:stopping"
 * event. That event carries the configuration that will start next: on a deploy or a flow restart a new
 * configuration object (the runtime replaced it before stopping), on a shutdown or a "stop flows" the
 * very object that started last. So:
 *   keep     a deploy/restart brings the node back with the same settings (its repository's too):
 *            the re-created node takes its work over;
 *   changed  it comes back with other settings: its work is cancelled;
 *   removed  it does not come back;
 *   stopping Node-RED (or its flows) stops: its work is cancelled.
 * A close that no "flows:stopping" announced counts as stopping.
 */
import type { NodeAPI, NodeDef } from './red';

export type StopDecision = 'keep' | 'changed' | 'removed' | 'stopping';

interface FlowsEvent {
  config?: { flows?: NodeDef[] };
}

/** The stop under way: whether a configuration starts after it, and the node settings before and after. */
interface Stop {
  restarting: boolean;
  before?: NodeDef[];
  after?: NodeDef[];
  decisions: Map<string, StopDecision>;
}

interface Tracker {
  started: FlowsEvent['config'] | null;
  /** Cleared when the flows have started again. */
  stop: Stop | null;
  onStarted: (() => void)[];
}

const trackers = new WeakMap<object, Tracker>();

/** Properties that place or label a node but do not change what it does. */
const LAYOUT = new Set(['x', 'y', 'z', 'g', 'w', 'h', 'l', 'wires', 'name', 'info', 'credentials', '_users']);

function settingsOf(flows: NodeDef[], id: string): string | null {
  const def = flows.find((n) => n.id === id);
  if (!def) return null;
  const settings = (node: NodeDef) => Object.fromEntries(Object.entries(node).filter(([k]) => !LAYOUT.has(k)).sort(([a], [b]) => a.localeCompare(b)));
  // Its repository's settings too: a backup must not go on into a repository the user just changed.
  const config = typeof def.repository === 'string' ? flows.find((n) => n.id === def.repository) : undefined;
  return JSON.stringify([settings(def), config ? settings(config) : null]);
}

function decide(stop: Stop, id: string): StopDecision {
  if (!stop.restarting) return 'stopping';
  const next = stop.after ? settingsOf(stop.after, id) : null;
  if (next === null) return 'removed';
  return stop.before && settingsOf(stop.before, id) === next ? 'keep' : 'changed';
}

function trackerFor(RED: NodeAPI): Tracker | null {
  const events = RED.events;
  if (!events) return null;
  const known = trackers.get(events);
  if (known) return known;
  const tracker: Tracker = { started: null, stop: null, onStarted: [] };
  trackers.set(events, tracker);
  events.on('flows:started', (event: FlowsEvent) => {
    tracker.started = event?.config ?? null;
    tracker.stop = null;
    for (const listener of tracker.onStarted) listener();
  });
  events.on('flows:stopping', (event: FlowsEvent) => {
    const next = event?.config ?? null;
    tracker.stop = { restarting: next !== null && next !== tracker.started, before: tracker.started?.flows, after: next?.flows, decisions: new Map() };
  });
  return tracker;
}

/** Start listening to the runtime's flow events (once per runtime); call when a node type registers. */
export function trackDeploys(RED: NodeAPI): void {
  trackerFor(RED);
}

/** What the stop under way means for node `id` (asked from its close handler). */
export function stopDecision(RED: NodeAPI, id: string): StopDecision {
  const stop = trackerFor(RED)?.stop;
  if (!stop) return 'stopping';
  let decision = stop.decisions.get(id);
  if (!decision) {
    decision = decide(stop, id);
    stop.decisions.set(id, decision);
  }
  return decision;
}

/** Call `listener` each time the flows have started (after a deploy, restart or start-up). */
export function onFlowsStarted(RED: NodeAPI, listener: () => void): void {
  trackerFor(RED)?.onStarted.push(listener);
}
