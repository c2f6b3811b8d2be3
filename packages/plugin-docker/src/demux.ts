/** Which output of a container a chunk came from. */
export type OutputStream = 'stdout' | 'stderr';

const HEADER = 8;

/**
 * A parser of Docker's multiplexed output stream (attach and logs of a container without a TTY):
 * frames of an 8-byte header (stream type, three zero bytes, big-endian payload length) and the
 * payload. Feed it the bytes as they arrive, split anywhere; it calls `onFrame` once per frame, in
 * order, and decodes UTF-8 per stream so a character split across frames stays whole.
 */
export function createDemuxer(onFrame: (stream: OutputStream, text: string) => void): {
  push(bytes: Uint8Array): void;
  /** flushes a partial character at the end of the output */
  end(): void;
} {
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  let pending: Buffer = Buffer.alloc(0);

  const emit = (stream: OutputStream, payload: Uint8Array, last: boolean): void => {
    const text = decoders[stream].decode(payload, { stream: !last });
    if (text !== '') onFrame(stream, text);
  };

  return {
    push(bytes) {
      pending = pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([pending, bytes]);
      while (pending.length >= HEADER) {
        const type = pending[0];
        const size = pending.readUInt32BE(4);
        if (pending.length < HEADER + size) break;
        // stdin (0) echoes and unknown types are shown as stdout rather than dropped
        emit(type === 2 ? 'stderr' : 'stdout', pending.subarray(HEADER, HEADER + size), false);
        pending = pending.subarray(HEADER + size);
      }
    },
    end() {
      emit('stdout', new Uint8Array(0), true);
      emit('stderr', new Uint8Array(0), true);
    },
  };
}
