// An OIDC issuer for the end-to-end suite: oauth2-mock-server (an
// independent implementation: discovery, JWKS, RS256-signed tokens) on
// 127.0.0.1:PORT. A token is asked for with the client_credentials grant;
// the form field `e2e_claims` (JSON) adds claims, shaped as the test wants
// (GitHub Actions' repository/repository_owner_id/ref, GitLab's
// project_path/namespace_id), and `e2e_ttl` sets exp = iat + e2e_ttl
// (iat and exp given in e2e_claims win).
//
// Usage: node issuer.mjs PORT   (prints "issuer ready <url>" once serving)
import { OAuth2Server } from 'oauth2-mock-server';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node issuer.mjs PORT');
  process.exit(2);
}
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token, req) => {
  const body = req.body ?? {};
  if (body.e2e_ttl) token.payload.exp = token.payload.iat + Number(body.e2e_ttl);
  // Last: claims given (iat, exp included) win.
  if (body.e2e_claims) Object.assign(token.payload, JSON.parse(body.e2e_claims));
});
await server.start(port, '127.0.0.1');
// Discovered over http://127.0.0.1 (what regauth's binding names).
server.issuer.url = `http://127.0.0.1:${port}`;
console.log(`issuer ready ${server.issuer.url}`);
const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
