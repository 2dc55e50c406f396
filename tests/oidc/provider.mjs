// A certified OpenID Provider (npm's oidc-provider) on loopback, for the suite.
//
//   node provider.mjs <json options>
//
// The options name the port, the issuer, the clients and the signing key (a private JWK
// the test made, so that it can also sign tokens of its own: expired ones, say). Accounts
// are whatever name is typed at the provider's own login form; an account whose name
// starts with "admin" is in the "chat-admins" group. Client-credentials tokens are JWTs
// for the chatbot's API (options.audience), the client being the user. Prints READY.

import Provider from 'oidc-provider';

const options = JSON.parse(process.argv[2]);

function groupsOf(id) {
  return id.startsWith('admin') ? ['chat-admins'] : ['staff'];
}

const provider = new Provider(options.issuer, {
  clients: options.clients,
  jwks: { keys: [options.signingKey] },
  cookies: { keys: ['the-suite-cookie-key'] },
  claims: { openid: ['sub'], email: ['email'], profile: ['name', 'groups'] },
  scopes: ['openid', 'email', 'profile', 'chat'],
  // The ID token carries the scopes' claims (groups), not only sub.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: id, email: `${id}@example.com`, groups: groupsOf(id) };
      },
    };
  },
  async extraTokenClaims(ctx, token) {
    // Client-credentials tokens: the client stands for a user of the same name.
    return token.clientId ? { groups: groupsOf(token.clientId) } : undefined;
  },
  features: {
    devInteractions: { enabled: true }, // the provider's own login and consent forms
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => options.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'chat',
        audience: options.audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
      }),
    },
  },
});

provider.listen(options.port, '127.0.0.1', () => console.log('READY'));
