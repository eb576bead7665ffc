// Flags for every headless Chromium these checks start.
//
// Chromium 156 runs its omnibox popup's WebUI
// (chrome://omnibox-popup.top-chrome) in a renderer of its own even when
// headless, where no window can show it, and renders it at launch and
// after navigations: about a second of CPU after a start that a 2-core
// machine takes from the page under test (a cold visit's first answer
// 2.0 s with it, 1.4 s without; bench/RESULTS.md). A user's browser has
// long finished starting by the time they open the page.
const quietFeatures = ['WebUIOmniboxPopup', 'WebUIOmniboxAimPopup', 'WebUIOmniboxFullPopup'];

// quiet returns flags with the features above added to its
// --disable-features (Chromium reads only the last one given), then
// CHROME_FLAGS (space-separated: flags to try without editing).
export function quiet(flags) {
  const all = [...flags, ...(process.env.CHROME_FLAGS ? process.env.CHROME_FLAGS.split(' ') : [])];
  const prefix = '--disable-features=';
  const disabled = new Set(quietFeatures);
  const rest = [];
  for (const f of all) {
    if (f.startsWith(prefix)) f.slice(prefix.length).split(',').filter(Boolean).forEach((x) => disabled.add(x));
    else rest.push(f);
  }
  return [...rest, prefix + [...disabled].join(',')];
}
