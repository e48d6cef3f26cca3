// The demo page: calls the public API (/info, /compare, /verify, /search, /subjects, the model
// reports) from the browser and shows the answers. No framework and no build step; every text from the server goes into the
// page as text, never as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  // The API key lives in this variable only: never in storage, cookies or the URL.
  let apiKey = '';
  let info = null;
  let model = null;
  // The chosen files, by input id: one File, or a list for the inputs that take several.
  const files = { 'image-a': null, 'image-b': null, candidate: null, references: [], query: null, 'enrol-images': [] };
  // Object URLs of the thumbnails, revoked when replaced.
  const urls = new Map();
  // Answers that arrive after a newer request was sent are dropped.
  const latest = { compare: 0, verify: 0, search: 0, enrol: 0, card: 0, subjects: 0 };

  // ---- small helpers -------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child);
    }
    return node;
  }

  const fmt = (x) => (Number.isFinite(x) ? x.toFixed(3) : String(x));
  const pct = (x) => (100 * x).toFixed(1) + '%';
  // A probability near 0 or 1 reads as "> 99.9%", not a rounded "100.0%" that claims certainty.
  const probability = (x) => (x > 0.999 ? '> 99.9%' : x < 0.001 ? '< 0.1%' : pct(x));
  const words = (s) => String(s).replace(/_/g, ' ').replace(/\bfar\b/g, 'FAR').replace(/\btar\b/g, 'TAR');
  const count = (n) => Number(n).toLocaleString('en');

  function authHeaders() {
    return apiKey ? { Authorization: 'Bearer ' + apiKey } : {};
  }

  // fetch() with the key; a non-2xx answer is thrown as a problem (RFC 9457 fields, whatever came).
  async function call(path, options) {
    let response;
    try {
      response = await fetch(path, { ...(options || {}), headers: authHeaders() });
    } catch (err) {
      throw { title: 'The server could not be reached', detail: 'Check that simverify is running, then try again.' };
    }
    if (response.ok) return response;
    let body = {};
    if ((response.headers.get('content-type') || '').includes('json')) {
      try { body = await response.json(); } catch (_) { body = {}; }
    }
    throw {
      status: response.status,
      title: body.title || response.statusText || 'The request failed',
      detail: body.detail || '',
      code: body.code,
      requestId: body.request_id,
      retryAfter: response.headers.get('retry-after'),
    };
  }

  // What a person can do about a problem, in words.
  function hint(problem) {
    switch (problem.status) {
      case 401: return 'Enter a valid API key in the field at the top of the page, then try again.';
      case 413: return 'Choose smaller images.';
      case 415:
      case 422: return 'Check that every file is an image (PNG, JPEG, WebP, GIF or BMP).';
      case 429:
      case 503: return 'The service is busy or still starting; try again in ' + (problem.retryAfter || 'a few') + ' seconds.';
      default: return '';
    }
  }

  function problemBox(problem) {
    const meta = [];
    if (problem.status) meta.push('HTTP ' + problem.status);
    if (problem.code) meta.push('code ' + problem.code);
    if (problem.requestId) meta.push('request id ' + problem.requestId);
    const help = hint(problem);
    return el('div', { class: 'problem', role: 'alert' },
      el('strong', {}, problem.title || 'Something went wrong'),
      problem.detail ? el('p', {}, problem.detail) : null,
      help ? el('p', {}, help) : null,
      meta.length ? el('p', { class: 'meta' }, meta.join(' · ')) : null);
  }

  // Anything thrown inside the page becomes a problem too, so the person always sees words.
  const asProblem = (err) => (err && err.title ? err : { title: 'The page failed', detail: String(err) });

  // ---- models --------------------------------------------------------------------------------

  async function loadInfo() {
    const notice = $('notice');
    try {
      info = await (await call('/info')).json();
    } catch (err) {
      info = null;
      notice.replaceChildren(problemBox(asProblem(err)));
      if (err.status === 503) setTimeout(loadInfo, 2000);
      return;
    }
    notice.replaceChildren();
    const select = $('model');
    const keep = model;
    select.replaceChildren(...info.models.map((m) => el('option', { value: m.name }, m.name + ' (' + m.architecture + ')')));
    const names = info.models.map((m) => m.name);
    select.value = names.includes(keep) ? keep : (names.includes(info.default_model) ? info.default_model : names[0]);
    select.disabled = false;
    modelChanged();
    loadSubjects();
  }

  const current = () => (info ? info.models.find((m) => m.name === model) : null);

  function modelChanged() {
    model = $('model').value;
    const m = current();
    if (!m) return;
    const test = m.evaluation.test;
    $('model-summary').replaceChildren(
      el('strong', {}, m.name), ' · ', m.architecture + ', ' + m.input.color + ' ' + m.input.width + '×' + m.input.height,
      ' · threshold ' + fmt(m.threshold), ' · ROC AUC ' + test.roc_auc.toFixed(4) + ' on ' + count(test.pairs) + ' held-out pairs');
    renderCard(m);
    if (files['image-a'] && files['image-b']) runCompare();
    else $('compare-result').dataset.state = 'empty';
    $('verify-result').dataset.state = 'empty';
    $('search-result').dataset.state = 'empty';
  }

  // ---- tabs (the WAI-ARIA tabs pattern: arrows move, Home/End jump) ------------------------------

  function setupTabs() {
    const tabs = [...document.querySelectorAll('[role="tab"]')];
    const select = (tab, focus) => {
      for (const t of tabs) {
        const on = t === tab;
        t.setAttribute('aria-selected', String(on));
        t.tabIndex = on ? 0 : -1;
        $(t.getAttribute('aria-controls')).hidden = !on;
      }
      if (focus) tab.focus();
      // The subject list changes behind the page's back (other clients): read it whenever it is shown.
      if (tab.id === 'tab-subjects') loadSubjects();
    };
    tabs.forEach((tab, i) => {
      tab.addEventListener('click', () => select(tab, false));
      tab.addEventListener('keydown', (event) => {
        const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
        if (to === undefined) return;
        event.preventDefault();
        select(tabs[(to + tabs.length) % tabs.length], true);
      });
    });
  }

  // ---- choosing and dropping images -----------------------------------------------------------

  function objectUrl(key, blob) {
    if (urls.has(key)) URL.revokeObjectURL(urls.get(key));
    const url = URL.createObjectURL(blob);
    urls.set(key, url);
    return url;
  }

  function showThumb(img, url, label) {
    img.onload = () => img.classList.toggle('small-source', img.naturalWidth < 96 && img.naturalHeight < 96);
    img.onerror = () => {
      img.hidden = true;
      img.closest('.drop').classList.remove('filled');
      img.closest('.drop').querySelector('.drop-text span').textContent = 'this browser cannot preview that file';
    };
    img.src = url;
    img.alt = label;
    img.hidden = false;
  }

  function setFiles(id, chosen) {
    const list = [...chosen].filter((f) => f && f.size !== undefined);
    if (!list.length) return;
    const zone = document.querySelector('[data-drop="' + id + '"]');
    const name = $(id + '-name');
    if ($(id).multiple) {
      files[id] = list;
      const thumbs = zone.querySelector('.thumbs');
      thumbs.replaceChildren(...list.map((f, i) => {
        const img = el('img', { alt: 'Image ' + (i + 1) + ': ' + f.name });
        img.src = objectUrl(id + '-' + i, f);
        return img;
      }));
      name.textContent = list.length + (list.length === 1 ? ' image: ' : ' images: ') + list.map((f) => f.name).join(', ');
    } else {
      files[id] = list[0];
      showThumb(zone.querySelector('.thumb'), objectUrl(id, list[0]), zone.querySelector('strong').textContent + ': ' + list[0].name);
      name.textContent = list[0].name + ' · ' + Math.ceil(list[0].size / 1024) + ' KB';
    }
    zone.classList.add('filled');
    updateButtons();
    if ((id === 'image-a' || id === 'image-b') && files['image-a'] && files['image-b']) runCompare();
  }

  // Empties a file input and its zone (enrolled images are done with).
  function clearFiles(id) {
    const zone = document.querySelector('[data-drop="' + id + '"]');
    $(id).value = '';
    files[id] = $(id).multiple ? [] : null;
    zone.classList.remove('filled');
    const thumbs = zone.querySelector('.thumbs');
    if (thumbs) thumbs.replaceChildren();
    $(id + '-name').textContent = '';
    updateButtons();
  }

  // A button is usable once its request has what it needs.
  function updateButtons() {
    $('compare-run').disabled = !(files['image-a'] && files['image-b']);
    $('verify-run').disabled = !(files.candidate && (files.references.length || verifySubject()));
    $('search-run').disabled = !files.query;
    $('enrol-run').disabled = !(files['enrol-images'].length && $('subject-id').value.trim());
  }

  function setupDrops() {
    for (const zone of document.querySelectorAll('[data-drop]')) {
      const id = zone.dataset.drop;
      const input = $(id);
      input.addEventListener('change', () => setFiles(id, input.files));
      zone.addEventListener('dragover', (event) => {
        event.preventDefault();
        zone.classList.add('dragging');
      });
      zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
      zone.addEventListener('drop', (event) => {
        event.preventDefault();
        zone.classList.remove('dragging');
        setFiles(id, event.dataTransfer.files);
      });
    }
    // A file dropped beside a zone would otherwise replace the page.
    window.addEventListener('dragover', (event) => event.preventDefault());
    window.addEventListener('drop', (event) => event.preventDefault());
  }

  // ---- the answer ----------------------------------------------------------------------------

  // A rounded top for the scale, so the threshold sits near the middle and the ends read well.
  const scaleMax = (distance, threshold) => Math.ceil(Math.max(threshold * 2, distance * 1.08) * 10) / 10;

  // Centres a label on its mark, except near the ends of the scale, where it would spill out.
  const edgeShift = (fraction) => (fraction < 0.08 ? 'none' : fraction > 0.92 ? 'translateX(-100%)' : 'translateX(-50%)');

  function scale(distance, threshold, yes) {
    const max = scaleMax(distance, threshold);
    const at = (v) => Math.min(100, Math.max(0, (v / max) * 100)) + '%';
    const part = (cls, style, text) => {
      const node = el('div', { class: cls }, text);
      Object.assign(node.style, style);
      return node;
    };
    const track = el('div', { class: 'scale-track' },
      part('scale-match', { width: at(threshold) }),
      part('scale-fill', { width: at(distance) }),
      part('scale-threshold', { left: at(threshold) }),
      part('scale-label', { left: at(threshold) }, 'threshold ' + fmt(threshold)),
      part('scale-dot ' + (yes ? 'yes' : 'no'), { left: at(distance) }),
      part('scale-label below', { left: at(distance), transform: edgeShift(distance / max) }, 'distance ' + fmt(distance)));
    const threshold100 = Math.min(100, (threshold / max) * 100);
    return el('div', {
      class: 'scale',
      role: 'img',
      'aria-label': 'Distance ' + fmt(distance) + ' on a scale from 0 to ' + fmt(max) + '; the threshold is ' +
        fmt(threshold) + ', so the distance is ' + (yes ? 'below' : 'above') + ' it.',
    }, track, el('div', { class: 'scale-ends' },
      el('span', { class: 'end-low' }, '0 · identical'),
      part('zone zone-match', { right: 100 - threshold100 + '%' }, '◀ match'),
      part('zone zone-other', { left: threshold100 + '%' }, 'no match ▶'),
      el('span', { class: 'end-high' }, fmt(max) + ' · far apart')));
  }

  function answer(prefix, yes, labels, a) {
    return el('div', { class: 'answer' },
      el('div', { class: 'verdict ' + (yes ? 'yes' : 'no') },
        el('span', {
          class: 'verdict-word', id: prefix + '-decision', 'data-match': String(yes), 'data-distance': String(a.distance),
        }, yes ? labels[0] : labels[1]),
        el('span', { class: 'verdict-sub' }, yes ? labels[2] : labels[3])),
      el('dl', { class: 'numbers' },
        el('div', {}, el('dt', {}, 'Distance'), el('dd', { id: prefix + '-distance' }, fmt(a.distance))),
        el('div', {}, el('dt', {}, 'Threshold'), el('dd', {}, fmt(a.threshold))),
        el('div', {}, el('dt', {}, 'Match probability'), el('dd', { id: prefix + '-score' }, probability(a.score), ' ', el('small', {}, 'calibrated'))),
        el('div', {}, el('dt', {}, 'Model'), el('dd', {}, a.model))),
      scale(a.distance, a.threshold, yes));
  }

  // Posts `form`; `inputs` (the model and file names) is written on the result so that a reader (the
  // browser test) can tell which request an answer belongs to.
  async function submit(kind, path, form, inputs, render) {
    const out = $(kind + '-result');
    const run = ++latest[kind];
    out.dataset.state = 'busy';
    out.dataset.inputs = inputs;
    out.replaceChildren(el('p', {}, { compare: 'Comparing…', verify: 'Verifying…', search: 'Searching…' }[kind]));
    try {
      const body = await (await call(path, { method: 'POST', body: form })).json();
      if (run !== latest[kind]) return;
      out.replaceChildren(render(body));
      out.dataset.state = 'done';
    } catch (err) {
      if (run !== latest[kind]) return;
      out.replaceChildren(problemBox(asProblem(err)));
      out.dataset.state = 'error';
    }
  }

  function runCompare() {
    if (!files['image-a'] || !files['image-b'] || !model) return;
    const form = new FormData();
    form.append('image_a', files['image-a']);
    form.append('image_b', files['image-b']);
    form.append('model', model);
    // Models with a pretrained trunk also say where the photos match.
    const explains = current() && current().explains;
    if (explains) form.append('explain', 'true');
    const inputs = model + ':' + files['image-a'].name + '|' + files['image-b'].name;
    const pictures = [files['image-a'], files['image-b']];
    submit('compare', '/compare', form, inputs, (a) => {
      const node = answer('compare', a.match, [
        'Match', 'No match', 'The same thing, by this model.', 'Not the same thing, by this model.'], a);
      if (a.explain) node.append(whereTheyMatch(a.explain, pictures));
      return node;
    });
  }

  // Each photo with its heatmap over it and the box of the region that matches the other photo.
  function whereTheyMatch(explain, pictures) {
    const figures = ['image_a', 'image_b'].map((side, i) => {
      const region = explain[side];
      const [x0, y0, x1, y1] = region.box;
      const share = (v, whole) => (100 * v / whole) + '%';
      // Placed through the style object: the page's policy refuses inline style attributes.
      const box = el('div', { class: 'match-box' });
      Object.assign(box.style, {
        left: share(x0, region.width), top: share(y0, region.height),
        width: share(x1 - x0, region.width), height: share(y1 - y0, region.height),
      });
      return el('figure', { class: 'match-region', id: 'compare-explain-' + (i ? 'b' : 'a') },
        el('div', { class: 'match-frame' },
          el('img', { src: URL.createObjectURL(pictures[i]), alt: pictures[i].name }),
          el('img', { class: 'heatmap', src: 'data:image/png;base64,' + region.heatmap, alt: '' }),
          box),
        el('figcaption', {}, Math.round(region.coverage * 100) + '% of ' + pictures[i].name + ' matches the other photo'));
    });
    return el('div', { class: 'explain' }, el('h3', {}, 'Where they match'), el('div', { class: 'explain-row' }, ...figures));
  }

  const verifySubject = () => $('verify-subject').value.trim();

  function runVerify() {
    // A subject named in its field wins over chosen reference images: the API takes one or the other.
    const subject = verifySubject();
    if (!files.candidate || !(subject || files.references.length) || !model) return;
    const form = new FormData();
    form.append('candidate', files.candidate);
    if (subject) form.append('subject', subject);
    else for (const f of files.references) form.append('references', f);
    form.append('aggregate', $('aggregate').value);
    form.append('model', model);
    const against = subject ? ['subject ' + subject] : files.references.map((f) => f.name);
    const inputs = model + ':' + [files.candidate.name, ...against].join('|');
    submit('verify', '/verify', form, inputs, (v) => {
      const node = answer('verify', v.verified, [
        'Verified', 'Rejected', 'The candidate is the same thing as the references.',
        'The candidate is not the same thing as the references.'], v);
      const max = scaleMax(Math.max(...v.distances), v.threshold);
      const whose = v.subject ? 'each image of subject ' + v.subject : 'each reference';
      const list = el('ol', { class: 'references', 'aria-label': 'Distance to ' + whose + ' (' + v.aggregate + ' decides)' },
        ...v.distances.map((d, i) => {
          const bar = el('span');
          bar.style.width = Math.min(100, (d / max) * 100) + '%';
          const tick = el('i');
          tick.style.left = Math.min(100, (v.threshold / max) * 100) + '%';
          return el('li', {},
            v.subject
              ? el('span', { class: 'ref-label' }, 'image ' + (i + 1))
              : el('img', { src: urls.get('references-' + i), alt: 'Reference ' + (i + 1) }),
            el('div', { class: 'mini', role: 'img', 'aria-label': 'distance ' + fmt(d) }, bar, tick),
            el('span', { class: 'd' }, (d < v.threshold ? '✓ ' : '✗ ') + fmt(d)));
        }));
      node.append(list);
      return node;
    });
  }

  // ---- search and subjects ------------------------------------------------------------------

  function runSearch() {
    if (!files.query || !model) return;
    const form = new FormData();
    form.append('image', files.query);
    form.append('k', $('search-k').value || '5');
    form.append('model', model);
    submit('search', '/search', form, model + ':' + files.query.name, (answer) => {
      if (!answer.results.length) {
        return el('p', {}, 'Nothing is enrolled with ' + answer.model + ' yet: enrol images in the Subjects tab.');
      }
      return el('table', { class: 'list', id: 'search-hits' },
        el('caption', { class: 'visually-hidden' }, 'Nearest enrolled images, nearest first'),
        el('thead', {}, el('tr', {}, ...['#', 'Subject', 'Distance', 'Match probability', 'Decision'].map((h, i) =>
          el('th', { scope: 'col', class: i >= 2 && i <= 3 ? 'num' : undefined }, h)))),
        el('tbody', {}, ...answer.results.map((hit, i) => el('tr', {
          'data-subject': hit.subject, 'data-distance': String(hit.distance), 'data-match': String(hit.match),
        },
        el('td', {}, String(i + 1)),
        el('th', { scope: 'row', title: 'image ' + hit.image_id }, hit.subject),
        el('td', { class: 'num' }, fmt(hit.distance)),
        el('td', { class: 'num' }, probability(hit.score)),
        el('td', { class: hit.match ? 'yes' : 'no' }, hit.match ? '✓ match' : '✗ no match')))));
    });
  }

  const subjectPath = (id) => '/subjects/' + encodeURIComponent(id);

  async function runEnrol() {
    const id = $('subject-id').value.trim();
    const images = files['enrol-images'];
    if (!id || !images.length || !model) return;
    const out = $('enrol-result');
    const run = ++latest.enrol;
    out.dataset.state = 'busy';
    out.dataset.inputs = model + ':' + id + ':' + images.map((f) => f.name).join('|');
    out.replaceChildren(el('p', {}, 'Enrolling…'));
    try {
      try {
        await call(subjectPath(id), { method: 'PUT' });
      } catch (err) {
        // A subject that exists already (with metadata of its own) takes more images all the same.
        if (err.code !== 'subject_exists') throw err;
      }
      const form = new FormData();
      for (const f of images) form.append('images', f);
      form.append('model', model);
      const enrolled = await (await call(subjectPath(id) + '/images', { method: 'POST', body: form })).json();
      if (run !== latest.enrol) return;
      const n = enrolled.image_ids.length;
      out.replaceChildren(el('p', { class: 'done-note' },
        '✓ Enrolled ' + n + (n === 1 ? ' image' : ' images') + ' into “' + enrolled.subject + '” with ' + enrolled.model + '.'));
      out.dataset.state = 'done';
      clearFiles('enrol-images');
      loadSubjects();
    } catch (err) {
      if (run !== latest.enrol) return;
      out.replaceChildren(problemBox(asProblem(err)));
      out.dataset.state = 'error';
    }
  }

  async function loadSubjects() {
    const out = $('subjects-list');
    const run = ++latest.subjects;
    out.dataset.state = 'busy';
    try {
      const page = await (await call('/subjects?limit=100')).json();
      if (run !== latest.subjects) return;
      $('subject-ids').replaceChildren(...page.subjects.map((subject) => el('option', { value: subject.id })));
      if (!page.subjects.length) {
        out.replaceChildren(el('p', {}, 'No subject is enrolled yet.'));
      } else {
        const table = el('table', { class: 'list', id: 'subjects-table' },
          el('caption', { class: 'visually-hidden' }, 'Enrolled subjects'),
          el('thead', {}, el('tr', {},
            el('th', { scope: 'col' }, 'Subject'), el('th', { scope: 'col', class: 'num' }, 'Images'),
            el('th', { scope: 'col' }, 'Updated'), el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Actions')))),
          el('tbody', {}, ...page.subjects.map((subject) => {
            const remove = el('button', { type: 'button', class: 'link', 'aria-label': 'Delete subject ' + subject.id }, 'Delete');
            remove.addEventListener('click', () => deleteSubject(subject.id));
            return el('tr', { 'data-subject': subject.id },
              el('th', { scope: 'row' }, subject.id),
              el('td', { class: 'num' }, String(subject.image_count)),
              el('td', {}, new Date(subject.updated_at).toLocaleString('en-GB')),
              el('td', {}, remove));
          })));
        const more = page.next_cursor ? [el('p', { class: 'hint-text' }, 'The first 100 subjects are shown.')] : [];
        out.replaceChildren(table, ...more);
      }
      out.dataset.state = 'done';
    } catch (err) {
      if (run !== latest.subjects) return;
      out.replaceChildren(problemBox(asProblem(err)));
      out.dataset.state = 'error';
    }
  }

  async function deleteSubject(id) {
    if (!window.confirm('Delete the subject “' + id + '” and every image enrolled for it?')) return;
    try {
      await call(subjectPath(id), { method: 'DELETE' });
    } catch (err) {
      $('subjects-list').prepend(problemBox(asProblem(err)));
      return;
    }
    loadSubjects();
  }

  // ---- the model card ------------------------------------------------------------------------

  const facts = (pairs) => el('dl', { class: 'facts' },
    ...pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));

  function figuresTable(evaluation) {
    const rows = [['Test pairs', evaluation.test]];
    if (evaluation.unseen_classes) rows.push(['Unseen classes', evaluation.unseen_classes]);
    const head = ['Held-out', 'Pairs', 'ROC AUC', 'EER', 'Accuracy', 'TAR @ FAR 1%', 'TAR @ FAR 0.1%'];
    return el('table', { class: 'figures' },
      el('caption', {}, 'Accuracy at the calibrated threshold; TAR: true accept rate at a fixed false accept rate (FAR); EER: equal error rate.'),
      el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...rows.map(([label, f]) => el('tr', {},
        el('th', { scope: 'row' }, label, el('small', { class: 'classes' }, f.classes)),
        el('td', {}, count(f.pairs)), el('td', {}, f.roc_auc.toFixed(4)), el('td', {}, pct(f.eer)),
        el('td', {}, pct(f.accuracy_at_threshold)), el('td', {}, pct(f.tar_at_far_1e_2)), el('td', {}, pct(f.tar_at_far_1e_3))))));
  }

  function renderCard(m) {
    const run = ++latest.card;
    const t = m.training || {};
    const plots = el('div', { class: 'plots' });
    $('card').replaceChildren(
      el('div', { class: 'card-head' }, el('h2', {}, 'Model card: ' + m.name), el('p', {}, m.description)),
      el('div', { class: 'card-grid' },
        el('div', { class: 'box' }, el('h3', {}, 'Decision'), facts([
          ['Threshold', fmt(m.threshold) + ' (' + words(m.threshold_method) + ')'],
          ['Rule', 'a match when the ' + m.distance + ' distance is below the threshold'],
          ['Score', 'a calibrated match probability from the distance'],
        ])),
        el('div', { class: 'box' }, el('h3', {}, 'Network'), facts([
          ['Architecture', m.architecture],
          ['Input', m.input.color + ', ' + m.input.width + ' × ' + m.input.height + ' px' +
            (m.input.polarity === 'light_on_dark' ? ', light on dark (dark-on-light images are inverted)' : '')],
          ['Embedding', m.embedding_dim + ' numbers'],
          ['Weights SHA-256', el('span', { class: 'hash' }, m.sha256)],
        ])),
        el('div', { class: 'box' }, el('h3', {}, 'Training data'), facts([
          ['Data', t.data],
          ['Classes', t.classes],
          ['Images', t.train_samples !== undefined
            ? count(t.train_samples) + ' training, ' + count(t.validation_samples) + ' validation, ' + count(t.test_samples) + ' test'
            : undefined],
          ['Run', t.loss !== undefined ? t.loss + ' loss, ' + t.epochs + ' epochs, seed ' + t.seed : undefined],
        ])),
        el('div', { class: 'box wide' }, el('h3', {}, 'Held-out figures'), figuresTable(m.evaluation))),
      el('h3', {}, 'Report'),
      plots);
    loadPlots(m.name, plots, run).catch((err) => plots.replaceChildren(problemBox(asProblem(err))));
  }

  // The plots come through fetch() rather than <img src> so that they carry the API key.
  async function loadPlots(name, into, run) {
    const list = await (await call('/models/' + encodeURIComponent(name) + '/report')).json();
    if (run !== latest.card) return;
    if (!list.plots.length) {
      into.replaceChildren(el('p', {}, 'This model has no report plots.'));
      return;
    }
    for (const plot of list.plots) {
      const blob = await (await call('/models/' + encodeURIComponent(name) + '/report/' + encodeURIComponent(plot.file))).blob();
      if (run !== latest.card) return;
      into.append(el('figure', {},
        el('img', { src: objectUrl('plot-' + plot.file, blob), alt: plot.title, loading: 'lazy' }),
        el('figcaption', {}, plot.title)));
    }
  }

  // ---- start ---------------------------------------------------------------------------------

  function start() {
    setupTabs();
    setupDrops();
    $('model').addEventListener('change', modelChanged);
    $('compare-run').addEventListener('click', runCompare);
    $('verify-run').addEventListener('click', runVerify);
    $('search-run').addEventListener('click', runSearch);
    $('enrol-run').addEventListener('click', runEnrol);
    $('subject-id').addEventListener('input', updateButtons);
    $('verify-subject').addEventListener('input', updateButtons);
    $('subjects-refresh').addEventListener('click', loadSubjects);
    const key = $('api-key');
    key.addEventListener('input', () => { apiKey = key.value.trim(); });
    // A new key: read the models again (the first try may have been refused), and redo the card.
    key.addEventListener('change', () => { apiKey = key.value.trim(); loadInfo(); });
    loadInfo();
  }

  start();
})();
