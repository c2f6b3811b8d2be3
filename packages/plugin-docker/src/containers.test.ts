import { describe, expect, it } from 'vitest';
import { isBeingRemoved } from './containers.js';

/** An error as docker-modem makes it from an engine's answer. */
function engineError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message}`), { statusCode });
}

describe('isBeingRemoved', () => {
  it("tells Docker's refusal to start a container under removal from other conflicts", () => {
    // as a real engine answered a start during a removal (seen in the engine-pool test)
    expect(isBeingRemoved(engineError(409, 'container is marked for removal and cannot be started'))).toBe(
      true,
    );
    expect(isBeingRemoved(engineError(409, 'removal of container abc is already in progress'))).toBe(true);
    expect(isBeingRemoved(engineError(409, 'Conflict. The container name "/x" is already in use'))).toBe(
      false,
    );
    expect(isBeingRemoved(engineError(500, 'container is marked for removal and cannot be started'))).toBe(
      false,
    );
    expect(isBeingRemoved(new Error('marked for removal'))).toBe(false);
  });
});
