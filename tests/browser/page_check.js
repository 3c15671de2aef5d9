// Run in a loaded page of the book (by test_book.py over the DevTools Protocol).
// Waits until MathJax has typeset the page and the widget manager has rendered every saved
// widget view (or until TIMEOUT_MS), then returns what it found as one JSON object.
(async (TIMEOUT_MS) => {
  const t0 = performance.now();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';
  const mathEls = () => Array.from(document.querySelectorAll(".math"));
  const hasMathJaxScript = !!document.querySelector('script[src*="tex-chtml"], script[src*="mathjax"]');

  const widgetState = () => Array.from(document.querySelectorAll(VIEW)).map((view) => {
    const area = view.previousElementSibling;
    const ok = !!area && area.classList.contains("widget-subarea");
    const rect = ok ? area.getBoundingClientRect() : { width: 0, height: 0 };
    const text = ok ? area.textContent : "";
    let model = "";
    try { model = JSON.parse(view.textContent).model_id; } catch (e) { model = "unparsable view JSON"; }
    return {
      model, rendered: ok && area.childElementCount > 0, width: Math.round(rect.width),
      height: Math.round(rect.height), error: /Error displaying widget|Could not create a view/.test(text),
      controls: ok ? area.querySelectorAll(".widget-dropdown, .widget-slider, .widget-toggle-buttons, " +
        ".widget-radio, .widget-checkbox, .widget-button, .widget-select, .jupyter-widgets.widget-output, " +
        ".widget-inline-hbox, .widget-hslider").length : 0,
      images: ok ? area.querySelectorAll("img").length : 0,
    };
  });

  // 1. MathJax: wait for its startup promise (initial typeset of the page).
  let mathjax = "absent";
  if (hasMathJaxScript) {
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && performance.now() - t0 < TIMEOUT_MS) {
      await sleep(50);
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; mathjax = "done"; } catch (e) { mathjax = "failed: " + e; }
    } else {
      mathjax = "never started";
    }
  }
  // 2. Widgets: wait until every view has a rendered, non-empty area.
  while (performance.now() - t0 < TIMEOUT_MS) {
    const ws = widgetState();
    if (ws.every((w) => w.rendered && w.height > 0)) break;
    await sleep(100);
  }
  // Fonts and late layout settle before measuring and screenshots.
  if (document.fonts && document.fonts.ready) await document.fonts.ready;
  await sleep(100);

  const math = mathEls();
  const untypeset = math.filter((el) => !el.querySelector("mjx-container"))
    .map((el) => el.textContent.trim().slice(0, 80));
  // Raw TeX delimiters left in the text of the article (outside code, math output and scripts).
  const article = document.querySelector("article") || document.body;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest("pre, code, script, style, mjx-container, textarea, .highlight")
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const rawTex = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const m = n.textContent.match(/\\\(|\\\[|\$\$|\\begin\{|\\frac|\\mathbb|\\mathcal/);
    if (m) rawTex.push(n.textContent.trim().slice(0, 80));
  }
  const merrors = Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
    .map((e) => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 120));

  const images = Array.from(document.querySelectorAll("article img"));
  const broken = images.filter((img) => !img.complete || img.naturalWidth === 0).map((img) => img.getAttribute("src"));
  const outputImages = images.filter((img) => img.closest(".cell_output") && !img.closest(".widget-subarea"));
  const noAlt = outputImages.filter((img) => {
    const alt = (img.getAttribute("alt") || "").trim();
    return !alt || /\.(png|jpe?g|svg)$/i.test(alt) || alt.startsWith("_images/") || alt.startsWith("../");
  }).map((img) => img.getAttribute("src"));
  const noCaption = outputImages.filter((img) => {
    const fig = img.closest("figure");
    return !fig || !fig.querySelector("figcaption");
  }).map((img) => img.getAttribute("src"));

  return {
    title: document.title,
    readyMs: Math.round(performance.now() - t0),
    mathjax,
    mathElements: math.length,
    displayMath: document.querySelectorAll('mjx-container[display="true"]').length,
    mjxContainers: document.querySelectorAll("mjx-container").length,
    untypeset, rawTex, merrors,
    widgets: widgetState(),
    // The widget manager calls MathJax 2's Hub.Queue; page_hygiene.py provides it over MathJax 3.
    mathjaxHub: !!(window.MathJax && window.MathJax.Hub && typeof window.MathJax.Hub.Queue === "function"),
    images: images.length, broken, noAlt, noCaption,
    bodyHeight: document.body.scrollHeight,
  };
})
