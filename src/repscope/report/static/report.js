/* repscope report: draws every figure as inline SVG from the JSON embedded once in the page.
   No library, no network request. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('rs-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var tip = document.getElementById('rs-tip');

  // ------------------------------------------------------------------ helpers
  function svgEl(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]); }
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, attrs) {
    var t = svgEl('text', Object.assign({x: x, y: y}, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function option(select, value, label) {
    var o = document.createElement('option');
    o.value = value; o.textContent = label; select.appendChild(o);
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || isNaN(v)) return '–';
    var a = Math.abs(v);
    if (a === 0 || (a >= 1e-3 && a < 1e4)) return v.toFixed(digits === undefined ? 3 : digits);
    return v.toExponential(2);
  }
  function channel(c) { c /= 255; return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }
  function luminance(hex) {
    var h = hex.replace('#', '');
    return 0.2126 * channel(parseInt(h.substr(0, 2), 16)) +
      0.7152 * channel(parseInt(h.substr(2, 2), 16)) + 0.0722 * channel(parseInt(h.substr(4, 2), 16));
  }
  // the ink with the higher contrast ratio on the cell's own colour (WCAG 2)
  function ink(hex) {
    var l = luminance(hex);
    return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? '#000000' : '#ffffff';
  }
  function colour(cmap, t) {
    var reversed = /_r$/.test(cmap) && cmap !== 'RdBu_r';
    var stops = D.cmaps[reversed ? cmap.slice(0, -2) : cmap];
    t = Math.max(0, Math.min(1, t));
    if (reversed) t = 1 - t;
    return stops[Math.round(t * (stops.length - 1))];
  }
  function showTip(evt, lines) {
    clear(tip);
    lines.forEach(function (l, i) {
      var d = document.createElement('div');
      d.textContent = l;
      if (i === 0) d.className = 'tip-head';
      tip.appendChild(d);
    });
    tip.style.display = 'block';
    var x = evt.clientX + 14, y = evt.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth - 8) x = evt.clientX - tip.offsetWidth - 10;
    if (y + tip.offsetHeight > window.innerHeight - 8) y = evt.clientY - tip.offsetHeight - 10;
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }
  function approxWidth(s, px) { return String(s).length * px * 0.6; }

  // ------------------------------------------------------------------ heatmap
  // spec: rows, cols, v, domain {lo, hi}, cmap, title, xlabel, ylabel, cbar, boxes, deg, corner,
  //       na (per-cell text for empty cells), tip(i, j) -> lines, digits
  function heatmap(container, spec) {
    clear(container);
    var nr = spec.rows.length, nc = spec.cols.length;
    var cw = Math.max(36, Math.min(64, 620 / Math.max(nc, 1)));
    var ch = Math.max(22, Math.min(40, 460 / Math.max(nr, 1)));
    var left = 16 + Math.max.apply(null, spec.rows.map(function (r) { return approxWidth(r, 11); }).concat([20]));
    var bottom = 30 + Math.max.apply(null, spec.cols.map(function (c) { return approxWidth(c, 11) * 0.75; }).concat([10]));
    var top = 30, gw = nc * cw, gh = nr * ch;
    var width = left + gw + 110, height = top + gh + bottom;
    var svg = svgEl('svg', {width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
      role: 'img', 'class': 'rs-svg', 'aria-label': spec.title}, container);
    var defs = svgEl('defs', {}, svg);
    var pat = svgEl('pattern', {id: 'hatch-' + container.id, width: 6, height: 6,
      patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)'}, defs);
    svgEl('line', {x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#555', 'stroke-width': 2, opacity: 0.6}, pat);
    text(svg, left, 18, spec.title, {'class': 'fig-title'});
    var lo = spec.domain.lo, hi = spec.domain.hi, span = (hi - lo) || 1;
    var annotate = nr * nc <= 400;
    for (var i = 0; i < nr; i++) {
      for (var j = 0; j < nc; j++) {
        var v = spec.v[i][j], x = left + j * cw, y = top + i * ch;
        var empty = v === null || v === undefined;
        var fill = empty ? '#f1f1f1' : colour(spec.cmap, (v - lo) / span);
        var cell = svgEl('rect', {x: x, y: y, width: cw, height: ch, fill: fill,
          stroke: '#ffffff', 'stroke-width': 0.5, 'class': 'cell', 'data-i': i, 'data-j': j}, svg);
        if (empty) {
          var why = spec.na ? spec.na[i][j] : 'n/a';
          text(svg, x + cw / 2, y + ch / 2 + 3, why === 'same model' ? '—' : 'n/a',
            {'text-anchor': 'middle', 'class': 'na'});
        } else if (annotate) {
          text(svg, x + cw / 2, y + ch / 2 + 3.5, fmt(v, spec.digits === undefined ? (cw < 46 ? 2 : 3) : spec.digits),
            {'text-anchor': 'middle', fill: ink(fill), 'class': 'ann'});
        }
        if (spec.deg && spec.deg[i][j]) {
          svgEl('rect', {x: x, y: y, width: cw, height: ch, fill: 'url(#hatch-' + container.id + ')',
            'pointer-events': 'none'}, svg);
        }
        if (spec.corner && spec.corner[i][j]) {
          text(svg, x + cw - 2, y + 9, spec.corner[i][j], {'text-anchor': 'end', fill: empty ? '#333' : ink(fill),
            'class': 'corner'});
        }
        (function (i, j) {
          cell.addEventListener('mousemove', function (e) { showTip(e, spec.tip(i, j)); });
          cell.addEventListener('mouseleave', hideTip);
        })(i, j);
      }
    }
    (spec.boxes || []).forEach(function (b) {
      svgEl('rect', {x: left + b[1] * cw + 1, y: top + b[0] * ch + 1, width: cw - 2, height: ch - 2,
        fill: 'none', stroke: '#e00000', 'stroke-width': 2.2, 'pointer-events': 'none', 'class': 'box'}, svg);
    });
    spec.rows.forEach(function (r, i) {
      text(svg, left - 6, top + i * ch + ch / 2 + 4, r, {'text-anchor': 'end', 'class': 'tick'});
    });
    spec.cols.forEach(function (c, j) {
      var cx = left + j * cw + cw / 2, cy = top + gh + 8;
      text(svg, cx, cy, c, {'text-anchor': 'end', transform: 'rotate(-50 ' + cx + ' ' + cy + ')', 'class': 'tick'});
    });
    if (spec.xlabel) text(svg, left + gw / 2, height - 4, spec.xlabel, {'text-anchor': 'middle', 'class': 'axis'});
    if (spec.ylabel) text(svg, 10, top + gh / 2, spec.ylabel, {'text-anchor': 'middle', 'class': 'axis',
      transform: 'rotate(-90 10 ' + (top + gh / 2) + ')'});
    // labelled colour bar: one scale per measure, with its direction
    var bx = left + gw + 14, steps = 40, bh = Math.max(gh, 80);
    for (var s = 0; s < steps; s++) {
      var t = 1 - (s + 0.5) / steps;
      svgEl('rect', {x: bx, y: top + s * bh / steps, width: 14, height: bh / steps + 0.5,
        fill: colour(spec.cmap, t)}, svg);
    }
    svgEl('rect', {x: bx, y: top, width: 14, height: bh, fill: 'none', stroke: '#999', 'stroke-width': 0.5}, svg);
    for (var k = 0; k <= 4; k++) {
      var val = hi - k * (hi - lo) / 4, ty = top + k * bh / 4;
      svgEl('line', {x1: bx + 14, x2: bx + 18, y1: ty, y2: ty, stroke: '#666'}, svg);
      text(svg, bx + 20, ty + 4, fmt(val, 2), {'class': 'tick'});
    }
    var lx = bx + 66, ly = top + bh / 2;
    text(svg, lx, ly, spec.cbar, {'text-anchor': 'middle', 'class': 'axis cbar-label',
      transform: 'rotate(90 ' + lx + ' ' + ly + ')'});
    return svg;
  }

  // ------------------------------------------------------------------ bar chart
  function bars(container, spec) {
    clear(container);
    var n = spec.values.length, bw = Math.max(26, Math.min(56, 520 / Math.max(n, 1)));
    var left = 48, top = 30;
    var bottom = 24 + Math.max.apply(null, spec.labels.map(function (l) { return approxWidth(l, 11) * 0.75; }).concat([10]));
    var gh = 200, gw = n * bw, width = left + gw + 150, height = top + gh + bottom;
    var svg = svgEl('svg', {width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
      role: 'img', 'class': 'rs-svg', 'aria-label': spec.title}, container);
    text(svg, left, 18, spec.title, {'class': 'fig-title'});
    function yOf(v) { return top + gh * (1 - Math.max(0, Math.min(1, v))); }
    for (var k = 0; k <= 4; k++) {
      var v = k / 4;
      svgEl('line', {x1: left, x2: left + gw, y1: yOf(v), y2: yOf(v), stroke: '#eee'}, svg);
      text(svg, left - 6, yOf(v) + 4, v.toFixed(2), {'text-anchor': 'end', 'class': 'tick'});
    }
    text(svg, 12, top + gh / 2, spec.ylabel, {'text-anchor': 'middle', 'class': 'axis',
      transform: 'rotate(-90 12 ' + (top + gh / 2) + ')'});
    spec.values.forEach(function (v, i) {
      var x = left + i * bw + 4, w = bw - 8;
      var bar = svgEl('rect', {x: x, y: yOf(v), width: w, height: top + gh - yOf(v), fill: '#3b82f6',
        'class': 'bar'}, svg);
      var lo = spec.lo ? spec.lo[i] : null, hi = spec.hi ? spec.hi[i] : null;
      if (lo !== null && hi !== null && lo !== undefined && hi !== undefined) {
        var cx = x + w / 2;
        svgEl('line', {x1: cx, x2: cx, y1: yOf(lo), y2: yOf(hi), stroke: '#111', 'stroke-width': 1.2, 'class': 'errbar'}, svg);
        svgEl('line', {x1: cx - 4, x2: cx + 4, y1: yOf(lo), y2: yOf(lo), stroke: '#111'}, svg);
        svgEl('line', {x1: cx - 4, x2: cx + 4, y1: yOf(hi), y2: yOf(hi), stroke: '#111'}, svg);
      }
      var top_ = (hi !== null && hi !== undefined) ? yOf(hi) : yOf(v);
      text(svg, x + w / 2, top_ - 4, fmt(v, 2), {'text-anchor': 'middle', 'class': 'ann'});
      var lx = x + w / 2, ly = top + gh + 8;
      text(svg, lx, ly, spec.labels[i], {'text-anchor': 'end', transform: 'rotate(-50 ' + lx + ' ' + ly + ')', 'class': 'tick'});
      bar.addEventListener('mousemove', function (e) { showTip(e, spec.tip(i)); });
      bar.addEventListener('mouseleave', hideTip);
    });
    if (spec.chance !== null && spec.chance !== undefined) {
      svgEl('line', {x1: left, x2: left + gw, y1: yOf(spec.chance), y2: yOf(spec.chance), stroke: '#d97706',
        'stroke-width': 1.6, 'stroke-dasharray': '5 3', 'class': 'chance'}, svg);
      text(svg, left + gw + 6, yOf(spec.chance) + 4, 'chance ' + fmt(spec.chance, 2), {'class': 'tick chance-label'});
    }
    return svg;
  }

  // ------------------------------------------------------------------ layer × layer
  function measureSpec(label) { return D.measures[label] || {direction: 'max', arrow: '↑ more alike', domain: {lo: 0, hi: 1}, cmap: 'viridis', line: '', asymmetry: '', fitted: ''}; }

  function panelTip(P, i, j) {
    var lines = [P.a + ' ' + P.rows[i] + '  ×  ' + P.b + ' ' + P.cols[j], P.measure + ' = ' + fmt(P.v[i][j])];
    if (P.lo && P.lo[i][j] !== null) lines.push('95% CI [' + fmt(P.lo[i][j]) + ', ' + fmt(P.hi[i][j]) + ']');
    if (P.p[i][j]) lines.push('p = ' + P.p[i][j] + (P.padj[i][j] ? ', adjusted ' + P.padj[i][j] : '') + (P.sig[i][j] ? ' — ' + P.sig[i][j] : ''));
    if (P.chance && P.chance[i][j] !== null) lines.push('chance level ' + fmt(P.chance[i][j]));
    if (P.deg[i][j]) lines.push('degenerate: never a best match');
    if (P.warn[i][j]) lines.push('warnings: ' + P.warn[i][j]);
    return lines;
  }

  function drawPanel(container, P) {
    var M = measureSpec(P.measure);
    container.setAttribute('data-measure', P.measure);
    container.setAttribute('data-pair', P.a + ' vs ' + P.b);
    container.setAttribute('data-boxed', P.boxed);
    container.setAttribute('data-hatched', P.hatched);
    return heatmap(container, {
      rows: P.rows, cols: P.cols, v: P.v, domain: M.domain, cmap: M.cmap,
      title: P.measure + ': ' + P.a + ' vs ' + P.b, xlabel: P.b + ' (columns)', ylabel: P.a + ' (rows)',
      cbar: P.measure + ' (' + M.kind + ', ' + M.arrow + ')', boxes: P.boxes, deg: P.deg, corner: P.corner,
      tip: function (i, j) { return panelTip(P, i, j); }
    });
  }

  function setText(id, s) { var n = document.getElementById(id); if (n) n.textContent = s; }

  function explorer() {
    var root = document.getElementById('explorer');
    if (!root || !D.panels.length) return;
    var mSel = document.getElementById('explorer-measure'), pSel = document.getElementById('explorer-pair');
    var labels = Object.keys(D.measures).filter(function (m) { return D.panels.some(function (p) { return p.measure === m; }); });
    labels.forEach(function (m) { option(mSel, m, m); });
    if (labels.indexOf(D.primary) >= 0) mSel.value = D.primary;
    function pairsFor(m) {
      return D.panels.map(function (p, k) { return [p, k]; }).filter(function (x) { return x[0].measure === m; });
    }
    function fillPairs() {
      var keep = pSel.selectedOptions.length ? pSel.selectedOptions[0].textContent : null;
      clear(pSel);
      pairsFor(mSel.value).forEach(function (x) {
        var p = x[0];
        option(pSel, String(x[1]), (p.dataset ? p.dataset + ': ' : '') + p.a + ' vs ' + p.b);
      });
      for (var k = 0; k < pSel.options.length; k++) { if (pSel.options[k].textContent === keep) pSel.selectedIndex = k; }
    }
    function draw() {
      var P = D.panels[+pSel.value];
      if (!P) return;
      var M = measureSpec(P.measure);
      drawPanel(document.getElementById('explorer-figure'), P);
      setText('explorer-caption', P.caption + ' Colour scale: ' + fmt(M.domain.lo, 2) + ' to ' + fmt(M.domain.hi, 2) +
        ' (' + M.domain.source + '), the same in every ' + P.measure + ' panel.');
      setText('explorer-measure-line', P.measure + ' — ' + M.line + (M.asymmetry ? ' ' + M.asymmetry : '') +
        (M.fitted ? ' ' + M.fitted : ''));
    }
    mSel.addEventListener('change', function () { fillPairs(); draw(); });
    pSel.addEventListener('change', draw);
    fillPairs(); draw();
    setText('explorer-count', D.panels.length + ' panels (' + labels.length + ' measures × their model pairs): choose one.');
  }

  // ------------------------------------------------------------------ model × model
  function modelMatrix() {
    var sel = document.getElementById('models-measure');
    if (!sel) return;
    var labels = Object.keys(D.model_matrix);
    labels.forEach(function (m) { option(sel, m, m); });
    if (labels.indexOf(D.primary) >= 0) sel.value = D.primary;
    function draw() {
      var m = sel.value, X = D.model_matrix[m], M = measureSpec(m);
      var fig = document.getElementById('models-figure');
      fig.setAttribute('data-measure', m);
      heatmap(fig, {
        rows: X.models, cols: X.models, v: X.v, domain: M.domain, cmap: M.cmap, na: X.status,
        title: m + ': model × model', cbar: m + ' (' + M.kind + ', ' + M.arrow + ')',
        tip: function (i, j) {
          var s = X.status[i][j];
          return [X.models[i] + ' × ' + X.models[j], s === 'value' ? m + ' = ' + fmt(X.v[i][j]) : s];
        }
      });
    }
    sel.addEventListener('change', draw);
    draw();
  }

  // ------------------------------------------------------------------ agreement
  function agreementFigure() {
    var A = D.agreement;
    var fig = document.getElementById('agree-figure');
    if (!fig || !A || !A.measures) return;
    var na = A.rho.map(function (row, i) { return row.map(function (v, j) { return v === null ? 'n/a' : ''; }); });
    heatmap(fig, {
      rows: A.measures, cols: A.measures, v: A.rho, domain: {lo: -1, hi: 1}, cmap: 'RdBu_r', na: na, digits: 2,
      title: 'Spearman correlation between measures across layer pairs', cbar: 'Spearman ρ (+1: same ranking)',
      tip: function (i, j) {
        var v = A.rho[i][j];
        return [A.measures[i] + ' vs ' + A.measures[j], v === null ?
          'n/a: fewer than 3 shared layer pairs, or one measure is constant on them (' + A.count[i][j] + ' shared)' :
          'ρ = ' + fmt(v, 2) + ' over ' + A.count[i][j] + ' layer pairs'];
      }
    });
    var s1 = document.getElementById('disagree-1'), s2 = document.getElementById('disagree-2');
    A.measures.forEach(function (m) { option(s1, m, m); option(s2, m, m); });
    // start with the most disagreeing pair of measures
    var worst = null;
    A.disagree.forEach(function (d) {
      var i = A.measures.indexOf(d.measure_1), j = A.measures.indexOf(d.measure_2), r = A.rho[i][j];
      if (r !== null && (worst === null || r < worst[2])) worst = [d.measure_1, d.measure_2, r];
    });
    if (worst) { s1.value = worst[0]; s2.value = worst[1]; } else if (A.measures.length > 1) { s2.selectedIndex = 1; }
    function draw() {
      var out = document.getElementById('disagree-table');
      clear(out);
      var d = A.disagree.filter(function (x) {
        return (x.measure_1 === s1.value && x.measure_2 === s2.value) || (x.measure_1 === s2.value && x.measure_2 === s1.value);
      })[0];
      var note = document.getElementById('disagree-note');
      if (!d) { note.textContent = s1.value === s2.value ? 'Choose two different measures.' : 'These two measures share fewer than 3 layer pairs.'; return; }
      var flip = d.measure_1 !== s1.value;
      var i = A.measures.indexOf(d.measure_1), j = A.measures.indexOf(d.measure_2);
      note.textContent = s1.value + ' and ' + s2.value + ': Spearman ρ = ' + fmt(A.rho[i][j], 2) + ' over ' + d.cells +
        ' layer pairs. The layer pairs they rank most differently (percentile rank of “more alike”, 100 % = most alike):';
      var head = document.createElement('tr');
      ['model A', 'layer A', 'model B', 'layer B', s1.value, 'rank', s2.value, 'rank'].forEach(function (h) {
        var th = document.createElement('th'); th.textContent = h; head.appendChild(th);
      });
      out.appendChild(head);
      d.rows.forEach(function (r) {
        var tr = document.createElement('tr');
        var cells = [r.model_a, r.layer_a, r.model_b, r.layer_b,
          fmt(flip ? r.value_2 : r.value_1), Math.round(100 * (flip ? r.rank_2 : r.rank_1)) + ' %',
          fmt(flip ? r.value_1 : r.value_2), Math.round(100 * (flip ? r.rank_1 : r.rank_2)) + ' %'];
        cells.forEach(function (c, k) { var td = document.createElement('td'); td.textContent = c; if (k >= 4) td.className = 'num'; tr.appendChild(td); });
        out.appendChild(tr);
      });
    }
    s1.addEventListener('change', draw); s2.addEventListener('change', draw);
    draw();
  }

  // ------------------------------------------------------------------ probes, stitching
  function functional() {
    var root = document.getElementById('probe-figures');
    if (root && D.probes.length) {
      var models = [];
      D.probes.forEach(function (p) { if (models.indexOf(p.model) < 0) models.push(p.model); });
      models.forEach(function (m, k) {
        var rows = D.probes.filter(function (p) { return p.model === m; });
        var div = document.createElement('div'); div.className = 'fig'; div.id = 'probe-' + k; root.appendChild(div);
        var chance = rows[0].chance === undefined ? null : rows[0].chance;
        bars(div, {
          values: rows.map(function (r) { return r.accuracy; }), labels: rows.map(function (r) { return r.layer; }),
          lo: rows.map(function (r) { return r.ci_low === undefined ? null : r.ci_low; }),
          hi: rows.map(function (r) { return r.ci_high === undefined ? null : r.ci_high; }),
          chance: chance, title: 'probe accuracy: ' + m, ylabel: 'held-out accuracy',
          tip: function (i) {
            var r = rows[i], l = [m + ' ' + r.layer, 'accuracy ' + fmt(r.accuracy)];
            if (r.ci_low !== undefined && r.ci_low !== null) l.push('95% CI [' + fmt(r.ci_low) + ', ' + fmt(r.ci_high) + ']');
            if (r.n_test) l.push(r.n_test + ' held-out inputs');
            if (r.chance !== undefined && r.chance !== null) l.push('chance (majority class) ' + fmt(r.chance));
            return l;
          }
        });
      });
    }
    function matrices(list, rootId, what, fixedHi) {
      var r = document.getElementById(rootId);
      if (!r) return;
      list.forEach(function (s, k) {
        var div = document.createElement('div'); div.className = 'fig'; div.id = rootId + '-' + k; r.appendChild(div);
        var hi = fixedHi;
        s.matrix.forEach(function (row) { row.forEach(function (v) { if (v !== null && v > hi) hi = v; }); });
        heatmap(div, {
          rows: s.layers_a, cols: s.layers_b, v: s.matrix, domain: {lo: 0, hi: hi}, cmap: 'viridis',
          title: what + ': ' + s.model_a + ' → ' + s.model_b, xlabel: s.model_b + ' layer', ylabel: s.model_a + ' layer',
          cbar: what + ' (↑ more alike)',
          tip: function (i, j) { return [s.model_a + ' ' + s.layers_a[i] + ' → ' + s.model_b + ' ' + s.layers_b[j], what + ' ' + fmt(s.matrix[i][j])]; }
        });
      });
    }
    matrices(D.probe_agreement, 'probe-agreement-figures', 'probe agreement', 1);
    matrices(D.stitching, 'stitching-figures', 'relative stitched accuracy', 1);
  }

  // ------------------------------------------------------------------ all results
  function allResults() {
    var R = D.rows, table = document.getElementById('rows-table');
    if (!table) return;
    var mSel = document.getElementById('rows-measure'), q = document.getElementById('rows-filter');
    var mi = R.columns.indexOf('measure'), wi = R.columns.indexOf('warnings');
    var ms = [];
    R.data.forEach(function (r) { if (ms.indexOf(r[mi]) < 0) ms.push(r[mi]); });
    option(mSel, '', 'all measures');
    ms.sort().forEach(function (m) { option(mSel, m, m); });
    function cellText(r, k) {
      var v = r[k];
      if (k === wi) return R.warnings[v] || '';
      if (typeof v === 'number') return fmt(v);
      return v === null ? '' : String(v);
    }
    function draw() {
      clear(table);
      var head = document.createElement('tr');
      R.columns.forEach(function (c) { var th = document.createElement('th'); th.textContent = c; head.appendChild(th); });
      table.appendChild(head);
      var needle = q.value.toLowerCase(), shown = 0, matched = 0;
      R.data.forEach(function (r) {
        if (mSel.value && r[mi] !== mSel.value) return;
        var texts = r.map(function (_, k) { return cellText(r, k); });
        if (needle && texts.join(' ').toLowerCase().indexOf(needle) < 0) return;
        matched++;
        if (shown >= 200) return;
        shown++;
        var tr = document.createElement('tr');
        texts.forEach(function (t, k) {
          var td = document.createElement('td'); td.textContent = t;
          if (typeof r[k] === 'number' && k !== wi) td.className = 'num';
          tr.appendChild(td);
        });
        table.appendChild(tr);
      });
      setText('rows-count', 'Showing ' + shown + ' of ' + matched + ' matching rows (' + R.data.length + ' in all).');
    }
    mSel.addEventListener('change', draw); q.addEventListener('input', draw);
    draw();
  }

  [explorer, modelMatrix, agreementFigure, functional, allResults].forEach(function (f) { f(); });
  document.body.setAttribute('data-rendered', 'true');
})();
