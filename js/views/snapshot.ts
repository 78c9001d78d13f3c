/** The kernel displays a static snapshot beside the explorer (attn_widget.export.snapshot), for notebooks
 *  saved and opened without a kernel. Where the live view renders, hide it: a style rule rather
 *  than the element's own style, because updating the snapshot replaces its element. */

export function hideSnapshot(key: string): () => void {
  if (!key) return () => {};
  const style = document.createElement("style");
  const selector = `[data-aw-snapshot="${CSS.escape(key)}"]`;
  // JupyterLab, Notebook 7 and Voila wrap each output in .jp-OutputArea-child: hide it whole.
  style.textContent = `${selector}, .jp-OutputArea-child:has(${selector}) { display: none !important; }`;
  style.dataset.awSnapshotHidden = key;
  document.head.append(style);
  return () => style.remove();
}
