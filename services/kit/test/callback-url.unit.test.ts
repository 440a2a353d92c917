/** The one rule for customers' callback URLs: billing's endpoints and trainer's and inferencer's per-request callback_url. */
import { AppError, checkCallbackUrl, isPublicAddress } from '@atelier/kit';

describe('isPublicAddress', () => {
  it.each([
    ['93.184.216.34', true],
    ['8.8.8.8', true],
    ['172.32.0.1', true],
    ['100.128.0.1', true],
    ['127.0.0.1', false],
    ['127.255.255.254', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['192.0.2.1', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
  ])('IPv4 %s → %s', (address, expected) => expect(isPublicAddress(address)).toBe(expected));

  it.each([
    ['2606:4700:4700::1111', true],
    ['2a00:1450:4001:81b::200e', true],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fe80::1%eth0', false],
    ['fc00::1', false],
    ['fd12:3456:789a::1', false],
    ['ff02::1', false],
    ['2001:db8::1', false],
    ['64:ff9b::7f00:1', false],
    ['2002:7f00:1::', false],
  ])('IPv6 %s → %s', (address, expected) => expect(isPublicAddress(address)).toBe(expected));

  it.each([
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:10.0.0.1', false],
    ['::ffff:169.254.169.254', false],
    ['::ffff:a9fe:a9fe', false],
    ['::127.0.0.1', false],
    ['::ffff:93.184.216.34', true],
    ['::ffff:5db8:d822', true],
  ])('IPv4-mapped %s → %s', (address, expected) => expect(isPublicAddress(address)).toBe(expected));

  it('anything that is not an address is not public', () => {
    for (const bad of ['', 'localhost', '1.2.3', '::gg', '1:2:3:4:5:6:7:8:9'])
      expect(isPublicAddress(bad)).toBe(false);
  });
});

describe('checkCallbackUrl', () => {
  it('accepts https to a name or a public address', () => {
    expect(checkCallbackUrl('https://hooks.example.com/atelier', false)).toBe(
      'https://hooks.example.com/atelier',
    );
    expect(checkCallbackUrl('https://93.184.216.34/x', false)).toBe('https://93.184.216.34/x');
  });
  it.each([
    'http://hooks.example.com/',
    'https://127.0.0.1/',
    'https://[::1]/',
    'https://[::ffff:7f00:1]/',
    'https://169.254.169.254/latest/meta-data',
    'https://localhost/',
    'https://user:pw@hooks.example.com/',
    'ftp://hooks.example.com/',
    'not a url',
  ])('refuses %s', (url) => expect(() => checkCallbackUrl(url, false)).toThrow());
  it('allows http and private destinations when the operator allows them', () => {
    expect(checkCallbackUrl('http://127.0.0.1:9999/cb', true)).toBe('http://127.0.0.1:9999/cb');
    expect(checkCallbackUrl('http://10.0.0.5/', true)).toBe('http://10.0.0.5/');
  });
  it('still refuses what is never a callback URL when private destinations are allowed', () => {
    for (const url of ['ftp://hooks.example.com/', 'https://user:pw@127.0.0.1/', 'not a url'])
      expect(() => checkCallbackUrl(url, true)).toThrow();
  });
  it('is a 400 invalid_argument naming the field it was given as', () => {
    const err = (() => {
      try {
        checkCallbackUrl('https://10.0.0.5/', false, 'callback_url');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({
      code: 'invalid_argument',
      message: 'callback_url must not point at a loopback, private or link-local address',
    });
    expect(() => checkCallbackUrl('http://example.com/', false, 'callback_url')).toThrow(
      'callback_url must be https',
    );
    expect(() => checkCallbackUrl('x'.repeat(10), false)).toThrow('url must be an absolute URL');
  });
});
