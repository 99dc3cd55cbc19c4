// A table that renders only the rows in view (plus a few either side) inside a scrolling box, so 1,000 or 10,000
// rows cost the DOM a few dozen <tr>. Rows have one height (cells do not wrap: style.css .vtable), measured from the
// first rendered row; spacer rows above and below keep the scroll height and the scrollbar true. The header stays
// (position: sticky). The box is focusable, so the keyboard scrolls it (arrows, Page Up/Down, Home/End).
import { cloneElement } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';

const OVERSCAN = 6;

/** Which rows to render: [first, last) for a scroll offset; pure (unit-testable). */
export function visibleRange(count, scrollTop, viewport, rowHeight, overscan = OVERSCAN) {
  if (count === 0 || rowHeight <= 0) return [0, 0];
  const first = Math.max(0, Math.min(count - 1, Math.floor(scrollTop / rowHeight) - overscan));
  const last = Math.min(count, Math.floor(scrollTop / rowHeight) + Math.ceil(viewport / rowHeight) + overscan + 1);
  return [first, Math.max(first, last)];
}

/**
 * id: the <table>'s id; head: the header row (a <tr>); rows: the data; renderRow(row, index) -> a <tr>;
 * columns: how many (for the spacers); maxHeight: the box's height in px; label: the box's accessible name.
 */
export function VirtualTable({ id, label, head, rows, renderRow, columns, maxHeight = 440, estimate = 36 }) {
  const box = useRef(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [rowHeight, setRowHeight] = useState(estimate);
  const [first, last] = visibleRange(rows.length, scrollTop, maxHeight, rowHeight);

  useLayoutEffect(() => {
    const tr = box.current?.querySelector('tbody > tr:not(.vspacer)');
    const hgt = tr?.getBoundingClientRect().height ?? 0;
    if (hgt > 0 && Math.abs(hgt - rowHeight) > 0.5) setRowHeight(hgt);
  });

  const spacer = (n, where) => (n <= 0 ? null
    : html`<tr class="vspacer" aria-hidden="true" data-spacer=${where} style=${{ height: `${n * rowHeight}px` }}><td colspan=${columns}></td></tr>`);
  return html`<div class="vbox" ref=${box} tabindex="0" role="region" aria-label=${`${label}: ${rows.length} rows, scroll to see more`}
      style=${{ maxHeight: `${maxHeight}px` }} onScroll=${(e) => setScrollTop(e.currentTarget.scrollTop)}
      data-rows=${rows.length} data-first=${first} data-last=${last}>
    <table id=${id} class="vtable" aria-rowcount=${rows.length + 1}>
      <thead>${head}</thead>
      <tbody>
        ${spacer(first, 'top')}
        ${rows.slice(first, last).map((r, i) => cloneElement(renderRow(r, first + i), { 'aria-rowindex': first + i + 2 }))}
        ${spacer(rows.length - last, 'bottom')}
      </tbody>
    </table>
  </div>`;
}
