import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { secretToken as serverSecretToken } from '../../plugin-repo-http/src/auth.js';
import { parseEventStream, type SseMessage } from './api.js';
import { clientPaths, secretToken } from './config.js';
import { duration, table } from './format.js';
import { settingsRequest } from './info.js';

async function parse(...pieces: string[]): Promise<SseMessage[]> {
  const encoder = new TextEncoder();
  const chunks = (async function* () {
    for (const piece of pieces) yield encoder.encode(piece);
  })();
  const messages: SseMessage[] = [];
  for await (const message of parseEventStream(chunks)) messages.push(message);
  return messages;
}

describe('the event stream parser', () => {
  it('reads the framing of the server: id, event, JSON data, blank line', async () => {
    expect(
      await parse(
        'id: app\nevent: change\ndata: {"state":"running","info":"build"}\n\n',
        'id: app\nevent: log\ndata: "==> Making\\n"\n\n',
        'id: \nevent: ping\ndata: null\n\n',
      ),
    ).toEqual([
      { id: 'app', event: 'change', data: '{"state":"running","info":"build"}' },
      { id: 'app', event: 'log', data: '"==> Making\\n"' },
      { id: '', event: 'ping', data: 'null' },
    ]);
  });

  it('joins messages split anywhere across chunks, even inside a UTF-8 character and a CRLF', async () => {
    const text = 'event: log\r\ndata: "héllo"\r\n\r\nevent: change\r\ndata: {"state":"success"}\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    const expected = [
      { id: undefined, event: 'log', data: '"héllo"' },
      { id: undefined, event: 'change', data: '{"state":"success"}' },
    ];
    for (let cut = 1; cut < bytes.length; cut++) {
      const chunks = (async function* () {
        yield bytes.slice(0, cut);
        yield bytes.slice(cut);
      })();
      const messages: SseMessage[] = [];
      for await (const message of parseEventStream(chunks)) messages.push(message);
      expect(messages, `cut at ${cut}`).toEqual(expected);
    }
  });

  it('joins data lines, skips comments, takes a missing space and bare CR, drops an unfinished message', async () => {
    expect(
      await parse(
        ': keep-alive\n',
        'event:log\ndata: one\ndata:two\n\n',
        'data: x\r\r',
        'event: log\ndata: cut',
      ),
    ).toEqual([
      { id: undefined, event: 'log', data: 'one\ntwo' },
      { id: undefined, event: 'message', data: 'x' },
    ]);
  });
});

describe('configuration paths and the secret token', () => {
  it('uses absolute XDG folders and falls back to HOME for missing or relative ones', () => {
    expect(
      clientPaths({ HOME: '/home/u', XDG_CONFIG_HOME: '/c', XDG_DATA_HOME: '/d', XDG_CACHE_HOME: '/k' }),
    ).toEqual({
      config: '/c/serene.yml',
      secret: '/d/serene/secret.txt',
      completions: '/k/serene-package-completions.txt',
    });
    expect(clientPaths({ HOME: '/home/u', XDG_CONFIG_HOME: 'relative' })).toEqual({
      config: path.join('/home/u/.config/serene.yml'),
      secret: '/home/u/.local/share/serene/secret.txt',
      completions: '/home/u/.cache/serene-package-completions.txt',
    });
  });

  it('hashes a secret exactly as the server checks authorized_secrets', () => {
    for (const secret of ['correct horse battery staple', 'a'.repeat(64), 'ünïcode']) {
      expect(secretToken(secret)).toBe(serverSecretToken(secret));
    }
    // the reference's example: standard Base64 of SHA-256, with padding
    expect(secretToken('')).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });
});

describe('formatting', () => {
  it('aligns columns two spaces apart without padding the last one', () => {
    expect(
      table(
        ['name', 'version', 'build'],
        [
          ['a', '1.0', 'passing'],
          ['longer-name', '-', 'none'],
        ],
      ),
    ).toBe('name         version  build\na            1.0      passing\nlonger-name  -        none\n');
  });

  it('shows durations in their two largest units', () => {
    expect([0, 999, 45_000, 200_000, 3_600_000, 7_500_000, 90_061_000].map(duration)).toEqual([
      '0s',
      '1s',
      '45s',
      '3m 20s',
      '1h',
      '2h 5m',
      '1d 1h',
    ]);
  });

  it('maps settings to the keys and values of the server', () => {
    expect(settingsRequest('enable', ['false'])).toEqual({ key: 'enabled', value: false });
    expect(settingsRequest('srcinfo-override', ['true'])).toEqual({ key: 'srcinfooverride', value: true });
    expect(settingsRequest('schedule', ['0', '0', '4', '*', '*', '*'])).toEqual({
      key: 'schedule',
      value: '0 0 4 * * *',
    });
    expect(settingsRequest('prepare', [''])).toEqual({ key: 'prepare', value: null });
    expect(settingsRequest('flags', ['--nocheck', 'skipinteg'])).toEqual({
      key: 'flags',
      value: ['nocheck', 'skipinteg'],
    });
  });
});
