import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DOCKER_SOCKET,
  dockerodeOptions,
  formatDockerEndpoint,
  parseDockerUrl,
} from './docker-url.js';

describe('parseDockerUrl', () => {
  it.each([
    [undefined, { kind: 'unix', socketPath: DEFAULT_DOCKER_SOCKET }],
    ['', { kind: 'unix', socketPath: DEFAULT_DOCKER_SOCKET }],
    ['/run/user/1000/docker.sock', { kind: 'unix', socketPath: '/run/user/1000/docker.sock' }],
    ['unix:///var/run/other.sock', { kind: 'unix', socketPath: '/var/run/other.sock' }],
    ['unix://', { kind: 'unix', socketPath: DEFAULT_DOCKER_SOCKET }],
    ['relative/docker.sock', { kind: 'unix', socketPath: 'relative/docker.sock' }],
    ['tcp://10.0.0.2:2375', { kind: 'http', protocol: 'http', host: '10.0.0.2', port: 2375 }],
    ['tcp://docker', { kind: 'http', protocol: 'http', host: 'docker', port: 2375 }],
    ['http://127.0.0.1:9000', { kind: 'http', protocol: 'http', host: '127.0.0.1', port: 9000 }],
    ['HTTP://Example.org:9000/', { kind: 'http', protocol: 'http', host: 'example.org', port: 9000 }],
    ['https://docker.example:2376', { kind: 'http', protocol: 'https', host: 'docker.example', port: 2376 }],
    ['tcp://[::1]:2375', { kind: 'http', protocol: 'http', host: '::1', port: 2375 }],
    ['ssh://builder@pi.lan', { kind: 'ssh', host: 'pi.lan', port: 22, username: 'builder' }],
    ['ssh://pi.lan:2222', { kind: 'ssh', host: 'pi.lan', port: 2222, username: undefined }],
  ])('%s', (url, expected) => {
    expect(parseDockerUrl(url)).toEqual(expected);
  });

  it('rejects other schemes and hostless URLs with an InputError', () => {
    expect(() => parseDockerUrl('ftp://me@host')).toThrow(/not a supported Docker URL/);
    expect(() => parseDockerUrl('ssh://')).toThrow(expect.objectContaining({ name: 'InputError' }));
    expect(() => parseDockerUrl('tcp://:2375')).toThrow(expect.objectContaining({ name: 'InputError' }));
  });

  it('formats endpoints back as URLs for messages', () => {
    expect(formatDockerEndpoint(parseDockerUrl('/x.sock'))).toBe('unix:///x.sock');
    expect(formatDockerEndpoint(parseDockerUrl('tcp://h:1'))).toBe('http://h:1');
    expect(formatDockerEndpoint(parseDockerUrl('tcp://[::1]:1'))).toBe('http://[::1]:1');
  });

  it('gives dockerode every connection field, so the environment cannot leak in', () => {
    const unix = dockerodeOptions(parseDockerUrl('/x.sock'));
    expect(unix).toMatchObject({ socketPath: '/x.sock', protocol: 'http' });
    expect(Object.keys(unix)).toEqual(
      expect.arrayContaining(['host', 'port', 'ca', 'cert', 'key', 'timeout']),
    );
    expect(unix.host).toBeUndefined();
    const tcp = dockerodeOptions(parseDockerUrl('tcp://h:1'));
    expect(tcp).toMatchObject({ host: 'h', port: 1, protocol: 'http' });
    expect(Object.keys(tcp)).toContain('socketPath');
    expect(tcp.socketPath).toBeUndefined();
  });

  it('passes TLS material to an https engine and a key to an ssh engine', () => {
    const tls = { ca: 'CA', cert: 'CERT', key: 'KEY' };
    expect(dockerodeOptions(parseDockerUrl('https://h:2376'), { tls })).toMatchObject({
      protocol: 'https',
      ...tls,
    });
    // plain http never gets TLS material
    expect(dockerodeOptions(parseDockerUrl('tcp://h:2375'), { tls }).ca).toBeUndefined();
    const ssh = dockerodeOptions(parseDockerUrl('ssh://me@h'), { sshPrivateKey: 'PRIVATE' });
    expect(ssh).toMatchObject({ protocol: 'ssh', host: 'h', port: 22, username: 'me' });
    expect(ssh.sshOptions).toEqual({ privateKey: 'PRIVATE' });
    expect(formatDockerEndpoint(parseDockerUrl('ssh://me@h'))).toBe('ssh://me@h:22');
  });
});
