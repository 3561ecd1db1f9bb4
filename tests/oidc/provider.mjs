// A real OpenID Connect provider for the tests (`oidc-provider`, npm, v9): one confidential
// client, PKCE (S256) required, the development login form (any password), no consent page.
//
//   node tests/oidc/provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// OIDC_ACCOUNTS holds the accounts as JSON: {"<sub>": {"tenant": "nyc", "roles": ["teacher"],
// "name": "…"}, …}; the login typed into the form is the `sub`. The `roles` scope releases
// `tenant` and `roles`; every claim of a granted scope goes into the ID token. Prints
// "listening" when it accepts connections. The module is found through OIDC_PROVIDER_DIR
// (default target/npm), where scripts/test.sh installs it.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error('usage: provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI');
  process.exit(2);
}
const dir = path.resolve(process.env.OIDC_PROVIDER_DIR || 'target/npm');
const require = createRequire(path.join(dir, 'package.json'));
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'roles'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email'],
    roles: ['tenant', 'roles'],
  },
  conformIdTokenClaims: false,
  cookies: { keys: ['test-only-cookie-key-0123456789'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { sub, ...account }; } };
  },
  // No consent page: the grant covers what the client asked for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log('listening'));
