import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient, type Reply } from '../helpers/client.js';
import { ADMIN_PASSWORD, tempDataDir } from '../helpers/hub.js';
import { startSamlHub, TestIdp } from '../helpers/saml-idp.js';
import { TestSmtp, linkIn } from '../helpers/smtp.js';
import { closeProjectHub, formPost, pathOf } from '../helpers/projects.js';

/**
 * Issue 12, invitations through SSO (inviteUseSso): with the real SAML IdP of the tests, the
 * invitee follows the emailed link, goes through the IdP and joins the project with the account
 * of their SAML identity; no hub password is made. A link opened while signed in as somebody
 * else gets a page that says so, and the invitation keeps working for the right person.
 */
describe('project invitations through SSO: the invitee joins with their SAML identity', function () {
  this.timeout(120_000);
  const smtp = new TestSmtp();
  let idp: TestIdp;
  let hub: Hub;
  let dataDir: string;
  let admin: HubClient;
  let sara: HubClient;

  /** Follow an emailed link in a fresh browser (or `browser`), through the IdP as `idpUser`, back to the invitation page. */
  async function throughSso(link: string, idpUser: string, browser = new HubClient(hub.url)): Promise<{ browser: HubClient; page: Reply }> {
    const invite = await browser.get(pathOf(link));
    assert.equal(invite.status, 200, invite.body.slice(0, 400));
    const sso = /id="sso-join" href="([^"]+)"/.exec(invite.body)?.[1]?.replace(/&amp;/g, '&');
    assert.ok(sso, 'the page offers the institution sign-in');
    assert.doesNotMatch(invite.body, /id="set-password"/, 'and no password form');
    const toSso = await browser.get(sso);
    assert.equal(toSso.status, 303);
    assert.equal(toSso.location, '/hub/saml/login?next=%2Fhub%2Finvite%2Fcontinue');
    const start = await browser.get(toSso.location!);
    assert.equal(start.status, 302, start.body);
    // The token waits in the hub's own cookie; the IdP never sees it.
    assert.doesNotMatch(decodeURIComponent(start.location!), /token/);
    const answer = await idp.answer(start.location!, idpUser);
    const acs = await browser.request('POST', '/hub/saml/acs', { form: { SAMLResponse: answer.SAMLResponse, RelayState: answer.RelayState } });
    assert.equal(acs.status, 303, acs.body.slice(0, 300));
    assert.equal(acs.location, '/hub/invite/continue');
    return { browser, page: await browser.get(acs.location!) };
  }

  before(async () => {
    await smtp.start();
    idp = await TestIdp.start();
    idp.addUser('pj2-sara', { password: 'x', attributes: { uid: 'pj2-sara', mail: 'pj2-sara@uni.example', eduPersonAffiliation: 'faculty' } });
    idp.addUser('pj2-omar', { password: 'x', attributes: { uid: 'pj2-omar', mail: 'pj2-omar@uni.example', eduPersonAffiliation: 'student' } });
    idp.addUser('pj2-lena', { password: 'x', attributes: { uid: 'pj2-lena', mail: 'pj2-lena@uni.example', eduPersonAffiliation: 'student' } });
    dataDir = tempDataDir('pj2-sso');
    hub = await startSamlHub('pj2-sso', idp, { dataDir, smtpHost: '127.0.0.1', smtpPort: smtp.port, smtpSecurity: 'none', inviteUseSso: true });
    admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
  });

  after(async () => {
    await closeProjectHub(hub, smtp, dataDir);
    await idp?.close();
  });

  it('the lead follows the link, signs in at the IdP, joins with that identity, and no hub password exists', async () => {
    const created = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number: 'P-4301', name: 'Clinic records', unit: 'Health', leadEmail: 'pj2-sara@uni.example', capacityGb: '0.03125' });
    assert.equal(created.status, 303, created.body.slice(0, 300));
    const [mail] = await smtp.waitFor('pj2-sara@uni.example');
    assert.match(mail!.raw.replace(/=\r?\n/g, ''), /sign in with your institution account/);
    const link = linkIn(mail!);
    // The password form is refused on an SSO site, even when sent by hand.
    const c = new HubClient(hub.url);
    const page = await c.get(pathOf(link));
    const byHand = await c.request('POST', pathOf(link), { form: { _csrf: HubClient.csrfFrom((await c.get('/hub/login')).body), username: 'pj2-sara', password: 'quartz meadow lantern ninety', confirm: 'quartz meadow lantern ninety' } });
    assert.equal(byHand.status, 400);
    assert.equal(await hub.users.get('pj2-sara'), null);

    const { browser, page: back } = await throughSso(link, 'pj2-sara');
    assert.equal(back.status, 200, back.body.slice(0, 300));
    assert.match(back.body, /Join as pj2-sara/);
    const joined = await browser.request('POST', `/hub/invite/join?token=${new URL(link).searchParams.get('token')}`, { form: { _csrf: HubClient.csrfFrom(back.body) } });
    assert.equal(joined.status, 303);
    assert.equal(joined.location, '/hub/projects/P-4301');
    const project = await browser.get('/hub/projects/P-4301');
    assert.equal(project.status, 200);
    assert.match(project.body, /Clinic records/);
    sara = browser;

    const account = await hub.users.get('pj2-sara');
    assert.equal(account?.source, 'saml');
    assert.equal(account?.passwordHash, undefined, 'no local password was made');
    assert.equal((await new HubClient(hub.url).login('pj2-sara', 'quartz meadow lantern ninety')).status, 401);
    // The link is spent.
    assert.equal((await new HubClient(hub.url).get(pathOf(link))).status, 410);
    // A later SAML sign-in of the same identity is the same member.
    const later = new HubClient(hub.url);
    const start = await later.get('/hub/saml/login');
    const answer = await idp.answer(start.location!, 'pj2-sara');
    assert.equal((await later.request('POST', '/hub/saml/acs', { form: { SAMLResponse: answer.SAMLResponse, RelayState: answer.RelayState } })).status, 303);
    assert.equal((await later.get('/hub/projects/P-4301')).status, 200);
  });

  it('a link opened while signed in as someone else gets a page saying so (409), and then works for the invitee', async () => {
    assert.equal((await formPost(sara, '/hub/projects/P-4301', '/hub/projects/P-4301/invite', { email: 'pj2-omar@uni.example' })).status, 303);
    const [mail] = await smtp.waitFor('pj2-omar@uni.example');
    const link = linkIn(mail!);
    const token = new URL(link).searchParams.get('token')!;
    // Sara, still signed in on her computer, opens Omar's link.
    const wrong = await sara.get(pathOf(link));
    assert.equal(wrong.status, 409);
    assert.match(wrong.body, /id="wrong-account"/);
    assert.match(wrong.body, /signed in as <strong>pj2-sara<\/strong> \(pj2-sara@uni\.example\), but this invitation is for <strong>pj2-omar@uni\.example<\/strong>/);
    assert.doesNotMatch(wrong.body, /id="join"/);
    // Posting the join by hand is refused the same way, and changes nothing.
    const forced = await sara.request('POST', `/hub/invite/join?token=${token}`, { form: { _csrf: HubClient.csrfFrom(wrong.body) } });
    assert.equal(forced.status, 409);
    const members = (await sara.get('/hub/projects/P-4301')).body;
    assert.doesNotMatch(members, /<li>pj2-omar(?!@)/, 'Omar is not a member');
    assert.match(members, /<li>pj2-sara \(lead\)/);

    // Omar follows it himself and joins as a member.
    const { browser, page } = await throughSso(link, 'pj2-omar');
    assert.match(page.body, /Join as pj2-omar/);
    const joined = await browser.request('POST', `/hub/invite/join?token=${token}`, { form: { _csrf: HubClient.csrfFrom(page.body) } });
    assert.equal(joined.status, 303);
    assert.equal((await browser.get('/hub/projects/P-4301')).status, 200);
    assert.equal((await hub.users.get('pj2-omar'))?.source, 'saml');
  });

  it('an SSO identity named like a local account is not merged into it: no sign-in, no membership', async () => {
    await hub.users.createLocal('pj2-lena', 'granite willow comet basin');
    assert.equal((await formPost(sara, '/hub/projects/P-4301', '/hub/projects/P-4301/invite', { email: 'pj2-lena@uni.example' })).status, 303);
    const [mail] = await smtp.waitFor('pj2-lena@uni.example');
    const browser = new HubClient(hub.url);
    await browser.get(pathOf(linkIn(mail!)));
    const toSso = await browser.get(`/hub/invite/sso?token=${new URL(linkIn(mail!)).searchParams.get('token')}`);
    const start = await browser.get(toSso.location!);
    const answer = await idp.answer(start.location!, 'pj2-lena');
    const acs = await browser.request('POST', '/hub/saml/acs', { form: { SAMLResponse: answer.SAMLResponse, RelayState: answer.RelayState } });
    assert.equal(acs.status, 409);
    assert.match(acs.body, /This name already belongs to another account/);
    assert.equal((await browser.get('/hub/invite/continue')).status, 302, 'not signed in');
    assert.equal((await hub.users.get('pj2-lena'))?.source, 'local');
    const view = await sara.get('/hub/projects/P-4301');
    assert.match(view.body, /pj2-lena@uni\.example/, 'the invitation is still pending');
  });

  it('coming back without the waiting invitation (another browser) gets a clear page', async () => {
    const res = await sara.get('/hub/invite/continue');
    assert.equal(res.status, 400);
    assert.match(res.body, /no invitation waiting/);
  });
});
