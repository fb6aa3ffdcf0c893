export { renderNotebook, NotebookInvalid, type RenderOptions, type RenderedNotebook, type BokehItem } from './render.js';
export { SampleGallery, sampleStem, type SampleGalleryOptions, type RenderedSample } from './sample-gallery.js';
export { findBokehJs, bokehUrlBase, type BokehJs } from './bokeh-assets.js';
export { samplePage, type SamplePageUrls } from './sample-page.js';
