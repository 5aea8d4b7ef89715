// A deliberately faulty OpenID provider for the faults the real one (provider.mjs) cannot
// produce. Node's own crypto only, no dependencies. Listens on 127.0.0.1:MOCK_PORT and prints
// "READY <issuer>".
//
// The device flow "approves itself": the first poll answers authorization_pending, the next
// one the fault under test (or a valid token). MOCK_FAULT selects the fault:
//   none            valid tokens (sub "alice", groups ["oidc-admins"])
//   slow_down       answers slow_down twice, then tokens (GET /stats shows poll times)
//   bad_signature   ID token signed with a key not in the JWKS (same kid)
//   wrong_issuer    discovery document names another issuer
//   token_issuer    ID token iss is another issuer
//   expired         ID token exp one hour ago
//   wrong_audience  ID token aud is another client
//   alg_none        ID token with alg "none"
//   hs256           ID token signed with HS256, the public key's modulus as secret
//   garbage         token endpoint answers 200 with a body that is not JSON
//   http_500        token endpoint answers 500
//   device_500      device authorization endpoint answers 500
//   userinfo_sub    userinfo names another sub
//   invalid_client  token endpoint answers 401 invalid_client
//   slow_loris      discovery document sent one byte every 0.5 s, never ending
//   huge_body       token endpoint answers 200 with a 100 MB body (chunked, no length)
//   huge_jwks       the JWKS (fetched with discovery) is a 100 MB body (chunked, no length)
//   html_discovery  discovery answers an HTML page (a login portal) with status 200
//   unknown_kid     ID token signed with the right key but a kid the JWKS does not list
//   other_issuer    ID token from another issuer, signed with that issuer's key and kid
//   nbf_future      ID token nbf one hour ahead
//   interval_0      device authorization says interval 0 (GET /stats shows poll times)
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';

const PORT = Number(process.env.MOCK_PORT || 9500);
const FAULT = process.env.MOCK_FAULT || 'none';
const ISSUER = `http://127.0.0.1:${PORT}`;
const CLIENT = process.env.MOCK_CLIENT || 'pam-oidc';

// Fixed test keys (see test-keys.json for why they are not generated here).
const fixtures = JSON.parse(fs.readFileSync(new URL('./test-keys.json', import.meta.url), 'utf8'));
const keyPair = (k) => {
  const privateKey = crypto.createPrivateKey({ key: k, format: 'jwk' });
  return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
};
const key = keyPair(fixtures.mock);
const rogue = keyPair(fixtures.rogue);
const jwk = { ...key.publicKey.export({ format: 'jwk' }), kid: 'mock-1', use: 'sig', alg: 'RS256' };

const b64 = (b) => Buffer.from(b).toString('base64url');

// 100 MB of spaces then "{}" in 1 MB chunks, no content-length, respecting backpressure;
// stops when the client hangs up.
function hundredMegabytes(res) {
  res.writeHead(200, { 'content-type': 'application/json' });
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  let sent = 0;
  const pump = () => {
    while (sent < 100) {
      sent++;
      if (!res.write(chunk)) return res.once('drain', pump);
    }
    res.end('{}');
  };
  res.on('close', () => { sent = 1000; });
  pump();
}
function jwt(claims, { alg = 'RS256', signer = key.privateKey, kid = 'mock-1' } = {}) {
  const head = b64(JSON.stringify({ alg, kid, typ: 'JWT' }));
  const body = b64(JSON.stringify(claims));
  const input = `${head}.${body}`;
  if (alg === 'none') return `${input}.`;
  if (alg === 'HS256') return `${input}.${b64(crypto.createHmac('sha256', Buffer.from(jwk.n, 'base64url')).update(input).digest())}`;
  return `${input}.${b64(crypto.sign('sha256', Buffer.from(input), signer))}`;
}

let polls = [];
const now = () => Math.floor(Date.now() / 1000);

function idToken() {
  const c = { iss: ISSUER, aud: CLIENT, sub: 'alice', iat: now(), exp: now() + 300, preferred_username: 'alice', name: 'Alice Mock', email: 'alice@example.test', email_verified: true, groups: ['oidc-admins'] };
  if (FAULT === 'token_issuer') c.iss = 'http://127.0.0.1:1/other';
  if (FAULT === 'expired') { c.iat = now() - 7200; c.exp = now() - 3600; }
  if (FAULT === 'wrong_audience') c.aud = 'another-client';
  if (FAULT === 'bad_signature') return jwt(c, { signer: rogue.privateKey });
  if (FAULT === 'alg_none') return jwt(c, { alg: 'none' });
  if (FAULT === 'hs256') return jwt(c, { alg: 'HS256' });
  if (FAULT === 'nbf_future') c.nbf = now() + 3600;
  if (FAULT === 'unknown_kid') return jwt(c, { kid: 'mock-rotated-away' });
  if (FAULT === 'other_issuer') { c.iss = 'https://other-idp.example'; return jwt(c, { signer: rogue.privateKey, kid: 'other-idp-1' }); }
  return jwt(c);
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  let data = '';
  req.on('data', (c) => { data += c; });
  req.on('end', () => {
    const url = req.url.split('?')[0];
    if (url === '/.well-known/openid-configuration' && FAULT === 'slow_loris') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(' '), 500);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (url === '/.well-known/openid-configuration' && FAULT === 'html_discovery') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end('<!doctype html><html><body><form>Sign in to the portal</form></body></html>');
    }
    if (url === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: FAULT === 'wrong_issuer' ? 'http://127.0.0.1:1/other' : ISSUER,
        authorization_endpoint: `${ISSUER}/auth`, token_endpoint: `${ISSUER}/token`,
        device_authorization_endpoint: `${ISSUER}/device/auth`, userinfo_endpoint: `${ISSUER}/me`,
        jwks_uri: `${ISSUER}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (url === '/jwks' && FAULT === 'huge_jwks') return hundredMegabytes(res);
    if (url === '/jwks') return json(res, 200, { keys: [jwk] });
    if (url === '/stats') return json(res, 200, { polls });
    if (url === '/device/auth') {
      if (FAULT === 'device_500') return json(res, 500, 'oops');
      polls = [];
      const authz = { device_code: 'mock-device-code', user_code: 'MOCK-CODE', verification_uri: `${ISSUER}/device`, verification_uri_complete: `${ISSUER}/device?user_code=MOCK-CODE`, expires_in: 120 };
      if (FAULT === 'interval_0') authz.interval = 0;
      return json(res, 200, authz);
    }
    if (url === '/token') {
      polls.push(Date.now());
      const n = polls.length;
      if (FAULT === 'invalid_client') return json(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
      if (n === 1) return json(res, 400, { error: 'authorization_pending' });
      if (FAULT === 'slow_down' && n <= 3) return json(res, 400, { error: 'slow_down' });
      if (FAULT === 'garbage') return json(res, 200, '<html>not json');
      if (FAULT === 'huge_body') return hundredMegabytes(res);
      if (FAULT === 'http_500') return json(res, 500, '');
      return json(res, 200, { access_token: 'mock-access-token', token_type: 'Bearer', expires_in: 300, id_token: idToken() });
    }
    if (url === '/me') {
      if (req.headers.authorization !== 'Bearer mock-access-token') return json(res, 401, { error: 'invalid_token' });
      return json(res, 200, { sub: FAULT === 'userinfo_sub' ? 'mallory' : 'alice', groups: ['oidc-admins'] });
    }
    return json(res, 404, { error: 'not_found' });
  });
});
server.listen(PORT, '127.0.0.1', () => console.log(`READY ${ISSUER}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
