"""The ffmpeg adapter: `python -m vsshiftnet.ffpipe IN OUT --sigma N`, the y4m filter
(`python -m vsshiftnet.ffpipe.filter`), the folder batch (`python -m vsshiftnet.ffpipe.batch`)
and the overhead benchmark (`python -m vsshiftnet.ffpipe.bench`).

Modules: y4m (stream format), color (YUV <-> RGB), probe (ffprobe), core (the streaming
restorer all tools share), pipeline (processes, muxing, --resume), procs (ffmpeg children,
progress). Heavy imports (torch) come in through core/pipeline, not this package.
"""
