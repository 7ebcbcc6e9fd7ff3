#include "options.hpp"

#include <string>

#include "radial/model_preset.hpp"

namespace radial_cli {

std::string GeometryFlags::describe_source() const {
  if (video_frames < 0) return {};
  return std::to_string(video_frames) + " video frames " + std::to_string(height) + "x" +
         std::to_string(width);
}

radial::Geometry GeometryFlags::resolve() const {
  const bool any_latent = frames >= 0 || tokens_per_frame >= 0;
  const bool any_pixel = video_frames >= 0 || height >= 0 || width >= 0;
  const char* forms =
      "give either --frames and --tokens-per-frame (latent), or --video-frames, --height and "
      "--width (pixels)";
  if (any_latent && any_pixel)
    throw UsageError(std::string("geometry: both forms given; ") + forms);
  if (!any_latent && !any_pixel) throw UsageError(std::string("geometry: none given; ") + forms);
  const radial::Model m = radial::parse_model(model);
  if (any_latent) {
    if (frames < 0 || tokens_per_frame < 0)
      throw UsageError(std::string("geometry: ") +
                       (frames < 0 ? "--frames" : "--tokens-per-frame") + " is missing; " + forms);
    radial::Geometry g;
    g.frames = frames;
    g.tokens_per_frame = tokens_per_frame;
    g.text_tokens = text_tokens;
    g.text_valid = text_valid;
    g.validate();
    return g;
  }
  if (video_frames < 0 || height < 0 || width < 0)
    throw UsageError(std::string("geometry: ") +
                     (video_frames < 0 ? "--video-frames" : height < 0 ? "--height" : "--width") +
                     " is missing; " + forms);
  return radial::geometry_from_video(m, video_frames, height, width, text_tokens, text_valid);
}

radial::PlanSpec SpecFlags::spec(radial::Model model) const {
  radial::PlanSpec s;
  s.pattern = dense ? radial::Pattern::dense : radial::Pattern::radial;
  s.model = model;
  s.decay_factor = decay_factor > 0 ? decay_factor : radial::model_preset(model).decay_factor;
  s.block_size = block_size;
  s.decay_adjacent = decay_adjacent;
  return s;
}

}  // namespace radial_cli
