// taskmill admin page script: live parts, row selection, confirmations and the add form's JSON check.
// Plain browser JavaScript, no build step; the pages work without it (minus live updates and checks).
/* global document, window, location, fetch */
'use strict';

(function () {
  var POLL_MS = 2000;

  // ---- Live parts: every [data-live] element is re-fetched (as JSON, same URL) while the page is visible.
  var lastHtml = {};
  var stopped = false;
  var timer = null;

  function liveParts() {
    return Array.prototype.slice.call(document.querySelectorAll('[data-live]'));
  }

  function replacePart(el, markup) {
    // Keep what the reader has done there: ticked rows, an opened explanation, focus in a field.
    if (el.contains(document.activeElement) && document.activeElement.matches('input:not([type=checkbox]), textarea, select')) return;
    var checked = {};
    el.querySelectorAll('input[type=checkbox][name=id]:checked').forEach(function (c) { checked[c.value] = true; });
    var open = {};
    el.querySelectorAll('details[open]').forEach(function (d, i) { open[i] = true; });
    // A focused checkbox, link or button inside keeps the focus across the swap (keyboard users).
    var focused = el.contains(document.activeElement) ? document.activeElement : null;
    var refocus = null;
    if (focused && focused.matches('input[type=checkbox][name=id]')) refocus = 'input[type=checkbox][name=id][value="' + focused.value + '"]';
    else if (focused && focused.matches('input[data-select-all]')) refocus = 'input[data-select-all]';
    else if (focused && focused.matches('button') && focused.form) refocus = 'form[action="' + focused.form.getAttribute('action') + '"] button';
    else if (focused && focused.matches('a[href]')) refocus = 'a[href="' + focused.getAttribute('href').replace(/"/g, '\\"') + '"]';
    el.innerHTML = markup;
    el.querySelectorAll('input[type=checkbox][name=id]').forEach(function (c) { if (checked[c.value]) c.checked = true; });
    if (refocus) {
      var again = el.querySelector(refocus);
      if (again) again.focus();
    }
    el.querySelectorAll('details').forEach(function (d, i) { if (open[i]) d.open = true; });
    updateSelection();
  }

  function poll() {
    timer = null;
    if (stopped || document.hidden) return;
    fetch(location.href, { headers: { 'x-live': '1', accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (res) {
        var type = res.headers.get('content-type') || '';
        if (!res.ok || type.indexOf('application/json') !== 0) {
          // Logged out (the login page answered) or gone: stop instead of hammering.
          if (res.status === 401 || res.status === 403 || res.redirected) stopped = true;
          return null;
        }
        return res.json();
      })
      .then(function (data) {
        if (!data || !data.regions) return;
        liveParts().forEach(function (el) {
          var id = el.getAttribute('data-live');
          var markup = data.regions[id];
          if (typeof markup !== 'string' || lastHtml[id] === markup) return;
          lastHtml[id] = markup;
          replacePart(el, markup);
        });
        document.documentElement.setAttribute('data-live-at', String(Date.now()));
      })
      .catch(function () { /* the server restarts or the network blips: try again next round */ })
      .then(schedule, schedule);
  }

  function schedule() {
    if (stopped || timer !== null || document.hidden || liveParts().length === 0) return;
    timer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) schedule();
  });

  // ---- Row selection on the task list.
  function updateSelection() {
    var boxes = document.querySelectorAll('input[type=checkbox][name=id]');
    var n = 0;
    boxes.forEach(function (b) { if (b.checked) n++; });
    document.querySelectorAll('[data-selected-count]').forEach(function (o) { o.textContent = String(n); });
    document.querySelectorAll('input[data-select-all]').forEach(function (all) {
      all.checked = boxes.length > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    });
  }

  document.addEventListener('change', function (e) {
    var t = e.target;
    if (t.matches && t.matches('input[data-select-all]')) {
      document.querySelectorAll('input[type=checkbox][name=id]').forEach(function (b) { b.checked = t.checked; });
    }
    if (t.matches && t.matches('input[type=checkbox]')) updateSelection();
    if (t.matches && t.matches('input[name=when]')) showWhen();
    if (t.matches && t.matches('select[data-task-select]')) taskChanged();
  });

  // ---- Confirmations: a form or a submit button with data-confirm asks first.
  document.addEventListener('submit', function (e) {
    var form = e.target;
    var button = e.submitter;
    var message = (button && button.getAttribute('data-confirm')) || form.getAttribute('data-confirm');
    if (message && !window.confirm(message)) { e.preventDefault(); return; }
    if (form.matches('[data-add-form]') && !checkPayload(true)) e.preventDefault();
  });

  // ---- Add form: the payload is checked as JSON, and against the task's JSON schema when it has one.
  function schemas() {
    var el = document.getElementById('task-schemas');
    if (!el) return {};
    try { return JSON.parse(el.getAttribute('data-schemas') || '{}'); } catch { return {}; }
  }

  function typeOf(v) {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'array';
    if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
    return typeof v;
  }

  function typeMatches(want, v) {
    var got = typeOf(v);
    return want === got || (want === 'number' && got === 'integer');
  }

  // A JSON Schema check of the common keywords (type, properties, required, enum, const, bounds,
  // lengths, pattern, items, additionalProperties, anyOf/oneOf): enough to name the bad field here;
  // the server checks again with the task's own validator.
  function validate(schema, v, path) {
    if (!schema || typeof schema !== 'object') return null;
    var where = path || 'the payload';
    if (schema.anyOf || schema.oneOf) {
      var alts = schema.anyOf || schema.oneOf;
      var ok = alts.some(function (s) { return validate(s, v, path) === null; });
      if (!ok) return where + ' matches none of the allowed shapes';
    }
    if (schema.allOf) {
      for (var a = 0; a < schema.allOf.length; a++) { var r = validate(schema.allOf[a], v, path); if (r) return r; }
    }
    if (schema.type) {
      var types = Array.isArray(schema.type) ? schema.type : [schema.type];
      if (!types.some(function (t) { return typeMatches(t, v); })) return where + ' must be ' + types.join(' or ') + ', not ' + typeOf(v);
    }
    if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(v)) return where + ' must be ' + JSON.stringify(schema.const);
    if (schema.enum && !schema.enum.some(function (x) { return JSON.stringify(x) === JSON.stringify(v); })) {
      return where + ' must be one of ' + schema.enum.map(function (x) { return JSON.stringify(x); }).join(', ');
    }
    if (typeof v === 'number') {
      if (typeof schema.minimum === 'number' && v < schema.minimum) return where + ' must be at least ' + schema.minimum;
      if (typeof schema.maximum === 'number' && v > schema.maximum) return where + ' must be at most ' + schema.maximum;
      if (typeof schema.exclusiveMinimum === 'number' && v <= schema.exclusiveMinimum) return where + ' must be more than ' + schema.exclusiveMinimum;
      if (typeof schema.exclusiveMaximum === 'number' && v >= schema.exclusiveMaximum) return where + ' must be less than ' + schema.exclusiveMaximum;
    }
    if (typeof v === 'string') {
      if (typeof schema.minLength === 'number' && v.length < schema.minLength) return where + ' must have at least ' + schema.minLength + ' characters';
      if (typeof schema.maxLength === 'number' && v.length > schema.maxLength) return where + ' must have at most ' + schema.maxLength + ' characters';
      if (typeof schema.pattern === 'string') {
        try { if (!new RegExp(schema.pattern, 'u').test(v)) return where + ' must match ' + schema.pattern; } catch { /* a pattern JS cannot read: the server judges */ }
      }
    }
    if (Array.isArray(v)) {
      if (typeof schema.minItems === 'number' && v.length < schema.minItems) return where + ' must have at least ' + schema.minItems + ' items';
      if (typeof schema.maxItems === 'number' && v.length > schema.maxItems) return where + ' must have at most ' + schema.maxItems + ' items';
      if (schema.items && typeof schema.items === 'object') {
        for (var i = 0; i < v.length; i++) { var ri = validate(schema.items, v[i], (path ? path : '') + '[' + i + ']'); if (ri) return ri; }
      }
    }
    if (typeOf(v) === 'object') {
      var props = schema.properties || {};
      var req = schema.required || [];
      for (var k = 0; k < req.length; k++) if (!(req[k] in v)) return '"' + (path ? path + '.' : '') + req[k] + '" is required';
      for (var key in v) {
        if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
        var sub = (path ? path + '.' : '') + key;
        if (props[key]) { var rp = validate(props[key], v[key], sub); if (rp) return rp; }
        else if (schema.additionalProperties === false) return '"' + sub + '" is not an allowed field';
        else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
          var ra = validate(schema.additionalProperties, v[key], sub); if (ra) return ra;
        }
      }
    }
    return null;
  }

  function checkPayload(focus) {
    var area = document.querySelector('textarea[data-json]');
    var status = document.getElementById('payload-status');
    if (!area || !status) return true;
    var text = area.value.trim();
    var problem = null;
    var value = {};
    if (text !== '') {
      try { value = JSON.parse(text); } catch (err) { problem = 'Not valid JSON: ' + err.message; }
    }
    var select = document.querySelector('select[data-task-select]');
    var entry = select ? schemas()[select.value] : null;
    if (!problem && entry && entry.jsonSchema) problem = validate(entry.jsonSchema, value, '');
    if (problem) {
      status.textContent = problem;
      status.className = 'json-status bad';
      area.setAttribute('aria-invalid', 'true');
      if (focus) area.focus();
      return false;
    }
    status.textContent = text === '' ? 'Empty: the payload will be {}.' : entry && entry.jsonSchema ? 'Valid JSON, matches the task\u2019s schema.' : 'Valid JSON.';
    status.className = 'json-status ok';
    area.removeAttribute('aria-invalid');
    return true;
  }

  function taskChanged() {
    var select = document.querySelector('select[data-task-select]');
    var button = document.querySelector('button[data-example]');
    var info = document.getElementById('schema-info');
    if (!select) return;
    var entry = schemas()[select.value];
    if (button) {
      button.disabled = !(entry && entry.example !== null && entry.example !== undefined);
      button.title = button.disabled ? 'This task exports no schema with an example.' : 'Fill the payload with an example';
    }
    var view = document.getElementById('schema-view');
    if (view) {
      view.hidden = !(entry && entry.jsonSchema);
      view.querySelector('pre').textContent = entry && entry.jsonSchema ? JSON.stringify(entry.jsonSchema, null, 2) : '';
    }
    if (info) info.textContent = entry && entry.jsonSchema ? 'This task has a payload schema: the payload is checked against it before sending.' : 'This task has no payload schema: any JSON is accepted.';
    if (document.querySelector('textarea[data-json]').value.trim() !== '') checkPayload(false);
  }

  document.addEventListener('click', function (e) {
    var t = e.target;
    if (t.matches && t.matches('button[data-example]')) {
      var select = document.querySelector('select[data-task-select]');
      var entry = select ? schemas()[select.value] : null;
      var area = document.querySelector('textarea[data-json]');
      if (entry && area) { area.value = JSON.stringify(entry.example, null, 2); checkPayload(false); }
    }
    if (t.matches && t.matches('button[data-format-json]')) {
      var ta = document.querySelector('textarea[data-json]');
      try { ta.value = JSON.stringify(JSON.parse(ta.value), null, 2); } catch { /* checkPayload says why */ }
      checkPayload(false);
    }
  });

  document.addEventListener('input', function (e) {
    if (e.target.matches && e.target.matches('textarea[data-json]')) checkPayload(false);
  });

  function showWhen() {
    var chosen = document.querySelector('input[name=when]:checked');
    document.querySelectorAll('[data-when]').forEach(function (el) {
      var on = chosen && el.getAttribute('data-when') === chosen.value;
      el.hidden = !on;
      el.querySelectorAll('input').forEach(function (i) { i.disabled = !on; });
    });
  }

  function start() {
    liveParts().forEach(function (el) { lastHtml[el.getAttribute('data-live')] = null; });
    updateSelection();
    showWhen();
    taskChanged();
    schedule();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
