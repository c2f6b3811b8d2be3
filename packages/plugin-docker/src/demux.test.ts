import { describe, expect, it } from 'vitest';
import { createDemuxer, type OutputStream } from './demux.js';

function frame(stream: number, payload: Buffer | string): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

function collect() {
  const frames: [OutputStream, string][] = [];
  const demux = createDemuxer((stream, text) => frames.push([stream, text]));
  return { frames, demux };
}

describe('createDemuxer', () => {
  it('splits frames into stdout and stderr chunks, in order', () => {
    const { frames, demux } = collect();
    demux.push(Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')]));
    expect(frames).toEqual([
      ['stdout', 'out 1\n'],
      ['stderr', 'err 1\n'],
      ['stdout', 'out 2\n'],
    ]);
  });

  it('reassembles frames split anywhere, one byte at a time', () => {
    const { frames, demux } = collect();
    const bytes = Buffer.concat([frame(1, 'hello '), frame(2, 'world'), frame(1, Buffer.alloc(0))]);
    for (const byte of bytes) demux.push(Buffer.from([byte]));
    demux.end();
    expect(frames.map(([, text]) => text).join('')).toBe('hello world');
  });

  it('keeps a multi-byte character that spans two frames of one stream whole', () => {
    const { frames, demux } = collect();
    const snowman = Buffer.from('☃'); // 3 bytes
    demux.push(frame(1, Buffer.concat([Buffer.from('a'), snowman.subarray(0, 1)])));
    demux.push(frame(2, 'between'));
    demux.push(frame(1, Buffer.concat([snowman.subarray(1), Buffer.from('b')])));
    demux.end();
    const stdout = frames.filter(([stream]) => stream === 'stdout').map(([, text]) => text);
    expect(stdout.join('')).toBe('a☃b');
    expect(frames.some(([, text]) => text.includes('\uFFFD'))).toBe(false);
  });
});
