// app.js - the frame: sign-in, hash routes, navigation. Each page is a
// module whose render(main) fills the page and returns when its data is
// shown (or throws an ApiError, shown in place).
import * as api from './api.js';
import * as fmt from './format.js';
import { disposeAll } from './charts.js';
import * as executive from './executive.js';
import * as clusters from './clusters.js';
import * as cltv from './cltv.js';
import * as exportsPage from './exports.js';
import * as planner from './planner.js';
import * as explain from './explain.js';
import * as uplift from './uplift.js';
import * as embeddings from './embeddings.js';

const PAGES = {
  '#/executive': { title: 'Executive', page: executive },
  '#/clusters': { title: 'Clusters', page: clusters },
  '#/cltv-churn': { title: 'CLTV & churn', page: cltv },
  '#/planner': { title: 'Campaign planner', page: planner },
  '#/explain': { title: 'Explainability', page: explain },
  '#/uplift': { title: 'Uplift simulator', page: uplift },
  '#/embeddings': { title: 'Embedding explorer', page: embeddings },
  '#/exports': { title: 'Exports', page: exportsPage },
};
const HOME = '#/executive';

const $ = (id) => document.getElementById(id);

// What a page keeps running (charts; a page's own leave(): the live feed)
// stops when another page is shown or on sign-out.
function leavePages() {
  disposeAll();
  for (const { page } of Object.values(PAGES)) if (page.leave) page.leave();
}

function showSignin(reason) {
  leavePages();
  $('shell').hidden = true;
  $('signin').hidden = false;
  const e = $('signin-error');
  e.textContent = reason || '';
  e.hidden = !reason;
  $('token').focus();
}

let rendering = 0;

async function route() {
  if (!api.token()) return showSignin();
  // #/page?key=value: the page and its parameters (the planner's links
  // to a segment's export).
  const [path, query] = location.hash.split('?');
  const hash = PAGES[path] ? path : HOME;
  if (hash !== path) {
    history.replaceState(null, '', hash);
  }
  $('signin').hidden = true;
  $('shell').hidden = false;
  $('banner').hidden = true;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === hash) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const { title, page } = PAGES[hash];
  document.title = `${title} - rfm`;
  leavePages();
  const main = $('main');
  main.replaceChildren();
  main.dataset.page = hash.slice(2);
  main.dataset.ready = 'false';
  window.scrollTo(0, 0);
  const mine = ++rendering;
  try {
    await page.render(main, new URLSearchParams(hash === path ? query || '' : ''));
  } catch (e) {
    if (mine !== rendering || e.status === 401) return;
    main.append(fmt.el('p', { class: 'error', role: 'alert', text: `Could not load this page: ${e.message}` }));
  }
  if (mine === rendering) main.dataset.ready = 'true';
}

async function signIn(ev) {
  ev.preventDefault();
  const tok = $('token').value.trim();
  if (!tok) return;
  try {
    // Any token-protected call tells a good token from a bad one; a model
    // not trained (503) still means the token was accepted.
    await api.get('/clusters/summary', { tok, quiet401: true }).catch((e) => {
      if (e.status === 401 || e.status === 0) throw e;
    });
  } catch (e) {
    showSignin(e.status === 401 ? `Sign-in refused: ${e.message}` : `Sign-in failed: ${e.message}`);
    return;
  }
  api.setToken(tok);
  $('token').value = '';
  route().then(() => $('main').focus({ preventScroll: true }));
}

api.setUnauthorizedHandler((why) => {
  api.clearToken();
  showSignin(`Signed out: ${why}`);
});

$('signin-form').addEventListener('submit', signIn);
$('signout').addEventListener('click', () => { api.clearToken(); showSignin(); });
window.addEventListener('hashchange', route);
route();
