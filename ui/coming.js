// coming.js - the pages whose data the server does not give yet: what
// they will show and which endpoints they wait for, with no chart.
import { el } from './format.js';

const WHAT = {
  planner: ['Campaign planner',
    'Pick a goal (win back, retain, upsell), a budget and a cost per contact; the page will propose whom to contact, ranked by expected gain from CLTV, churn and uplift, and export the list.',
    'It needs the uplift learners being added now and a planning endpoint.'],
  explain: ['Explainability',
    'Global importance and a beeswarm of the churn model\'s exact contributions over a sample, and a per-customer waterfall with its counterfactual.',
    'It waits for GET /analytics/shap-sample. A single customer\'s explanation is already in POST /predict_churn.'],
  uplift: ['Uplift simulator',
    'Qini curves per arm against the random line, uplift by decile, and the share targeted against expected incremental conversions and net gain.',
    'It waits for GET /analytics/qini.'],
  embeddings: ['Embedding explorer',
    'A 2-D map of the customer embeddings coloured by segment; clicking a customer lists their lookalikes from POST /similar_customers.',
    'It waits for GET /analytics/embedding-map.'],
};

export function page(name) {
  return {
    async render(main) {
      const [title, what, wait] = WHAT[name];
      main.append(
        el('h1', { text: title }),
        el('section', { class: 'card coming', 'data-state': 'coming' },
          el('h2', { text: 'Coming soon' }),
          el('p', { text: what }),
          el('p', { class: 'muted', text: wait })));
    },
  };
}
