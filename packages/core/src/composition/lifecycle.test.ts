import { describe, expect, it } from 'vitest';
import { createMemoryLogger, type LogRecord } from '../logger.js';
import { createLifecycle, type Part } from './lifecycle.js';

/** A part that records its start and stop in `events`, failing where asked. */
const recorded = (name: string, events: string[], fail: { start?: boolean; stop?: boolean } = {}): Part => ({
  name,
  async start() {
    events.push(`start ${name}`);
    if (fail.start) throw new Error(`${name} cannot start`);
  },
  async stop() {
    events.push(`stop ${name}`);
    if (fail.stop) throw new Error(`${name} cannot stop`);
  },
});

describe('createLifecycle', () => {
  it('starts in order and stops in reverse, once', async () => {
    const events: string[] = [];
    const lifecycle = createLifecycle();
    for (const name of ['store', 'runner', 'http']) lifecycle.add(recorded(name, events));
    lifecycle.add({ name: 'start only', start: () => void events.push('start start only') });
    await lifecycle.start();
    await Promise.all([lifecycle.stop(), lifecycle.stop()]);
    await lifecycle.stop();
    expect(events).toEqual([
      'start store',
      'start runner',
      'start http',
      'start start only',
      'stop http',
      'stop runner',
      'stop store',
    ]);
  });

  it('on a failed start stops the parts started, in reverse, and throws the cause', async () => {
    const events: string[] = [];
    const logs: LogRecord[] = [];
    const lifecycle = createLifecycle({ logger: createMemoryLogger(logs) });
    lifecycle.add(recorded('store', events));
    lifecycle.add(recorded('publisher', events, { stop: true }));
    lifecycle.add(recorded('runner', events, { start: true }));
    lifecycle.add(recorded('http', events));
    await expect(lifecycle.start()).rejects.toThrow('runner cannot start');
    // the failed part is not stopped (it did not start); a failing stop does not keep the others running
    expect(events).toEqual([
      'start store',
      'start publisher',
      'start runner',
      'stop publisher',
      'stop store',
    ]);
    expect(logs.map((line) => `${line.level} ${line.message} ${line.meta.part}`)).toEqual([
      'error a part failed to start; stopping the parts started runner',
      'error a part failed to stop publisher',
    ]);
    await lifecycle.stop();
    expect(events.length).toBe(5);
  });

  it('a stop during the start lets the current part finish and starts no more', async () => {
    const events: string[] = [];
    let release = () => {};
    const lifecycle = createLifecycle();
    lifecycle.add(recorded('store', events));
    lifecycle.add({
      name: 'slow',
      start: () =>
        new Promise<void>((resolve) => {
          events.push('start slow');
          release = resolve;
        }),
      stop: () => void events.push('stop slow'),
    });
    lifecycle.add(recorded('http', events));
    const starting = lifecycle.start();
    await new Promise((resolve) => setImmediate(resolve));
    const stopping = lifecycle.stop();
    release();
    await starting;
    await stopping;
    expect(events).toEqual(['start store', 'start slow', 'stop slow', 'stop store']);
  });

  it('refuses a part added once the start has begun', async () => {
    const lifecycle = createLifecycle();
    await lifecycle.start();
    expect(() => lifecycle.add({ name: 'late' })).toThrow(/cannot add late: the start has begun/);
  });
});
