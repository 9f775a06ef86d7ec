"""The compatibility corpus: cells written in the reference SpatialClaw calling style, from its API table.

Each session's cells run in order in one real kernel (they share variables, as an agent's cells do). The code
before a ``# check`` line is what a reference agent writes; the asserts after it hold the results against the
scene's truth (``TRUTH``, set by the session's first cell). A cell passes when it runs to its end (or, for
ReturnAnswer cells, when the answer is accepted).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """One cell: ``session`` it runs in, ``code``; optionally text its output must hold, how many images it must
    show, and the answer value it must submit."""

    session: str
    name: str
    code: str
    output: tuple[str, ...] = ()
    images: int | None = None
    answer: object = None


def _session(name: str, *cells: tuple) -> list[Cell]:
    return [Cell(name, cell_name, code.strip("\n"), **extra) for cell_name, code, *rest in cells
            for extra in [rest[0] if rest else {}]]


#: Helpers every session defines after TRUTH (test scaffolding, not reference code).
HELPERS = """
def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

def mask_box(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]

def near(a, b, tol):
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float))) <= tol
"""

LIVING = _session(
    "living",
    # --- the namespace ---------------------------------------------------------------------------------
    ("ns_modules", """
c = collections.Counter(['chair', 'table', 'chair'])
pairs = list(itertools.combinations(['chair', 'table', 'sofa'], 2))
total = functools.reduce(lambda a, b: a + b, [1, 2, 3])
print(np.pi, math.sqrt(16), c.most_common(1), len(pairs), total)
# check
assert c['chair'] == 2 and len(pairs) == 3 and total == 6 and math.sqrt(16) == 4.0
"""),
    ("ns_scipy_submodules", """
labelled, count = ndimage.label(np.eye(4))
d = spatial.distance.euclidean([0, 0], [3, 4])
smooth = signal.medfilt([1.0, 9.0, 1.0, 1.0, 1.0], 3)
best = optimize.minimize_scalar(lambda x: (x - 2.5) ** 2)
tree = spatial.cKDTree(np.random.rand(20, 3))
print(count, d, smooth, round(best.x, 3), scipy.linalg.norm([3, 4]))
# check
assert count == 4 and d == 5.0 and smooth[1] == 1.0 and abs(best.x - 2.5) < 1e-4 and tree.n == 20
"""),
    ("ns_signal_is_scipy", """
peaks, _ = signal.find_peaks([0, 2, 0, 3, 0])
b, a = signal.butter(2, 0.3)
print(peaks, len(b))
# check
assert list(peaks) == [1, 3] and len(a) == 3
"""),
    ("ns_matplotlib", """
print(matplotlib.get_backend())
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([0, 1, 2], [2.0, 1.5, 1.2])
ax.set_title('distance to the table')
plt.show()
# check
assert 'agg' in matplotlib.get_backend().lower() and plt.get_fignums() == []
""", {"images": 1}),
    ("ns_import_tools", """
import tools
from tools import SAM3 as sam3_tool
print(tools)
# check
assert sam3_tool is SAM3 and tools.SAM3 is SAM3 and tools.Geometry is Geometry
"""),
    ("ns_import_each_tool", """
from tools import Reconstruct as R1, SAM3 as S1, Graph as G1, Time as T1, Mask as M1, Geometry as Ge1, Draw as D1
# check
assert (R1, S1, G1, T1, M1, Ge1, D1) == (Reconstruct, SAM3, Graph, Time, Mask, Geometry, Draw)
assert (tools.Reconstruct, tools.Graph, tools.Time, tools.Mask, tools.Draw) == (Reconstruct, Graph, Time, Mask, Draw)
"""),
    ("ns_bare_tool_names", """
secs = Time.frame_to_seconds(InputImages[1].frame_index)
area = Mask.area(np.ones((4, 5), bool))
fb = Graph.plot([1.0, 2.0])
marked = Draw.draw_point(InputImages[0], [10, 10])
d = Geometry.euclidean_distance([0, 0, 0], [0, 0, 2])
recon0 = Reconstruct.Reconstruct(InputImages[0])
# check
assert secs == TRUTH['seconds'][InputImages[1].frame_index] and area == 20 and d == 2.0 and recon0.num_frames == 1
assert fb.description and marked.size == InputImages[0].size and SAM3.backend
"""),
    ("ns_import_vlm_feedback", """
import vlm as vlm_module
import feedback as feedback_module
# check
assert vlm_module is vlm and feedback_module is feedback and feedback.show is show
"""),
    ("ns_allowed_imports", """
import re
import json
import warnings
from PIL import Image, ImageDraw
import cv2
import scipy.signal
from scipy.spatial.transform import Rotation
import matplotlib.patches as patches
from matplotlib import cm
from mpl_toolkits.mplot3d import Axes3D
import pprint, colorsys, numbers
warnings.filterwarnings('ignore')
print(Rotation.from_euler('z', 90, degrees=True).as_matrix().round(3))
# check
assert re.findall(r'\\d+', 'x 12 y 7') == ['12', '7'] and json.loads('[1, 2]') == [1, 2]
"""),
    ("ns_copy_tools", """
import copy
tools_copy = copy.deepcopy(tools)
sam3_copy = copy.copy(SAM3)
# check
assert tools_copy is tools and sam3_copy is SAM3 and copy.deepcopy(vlm) is vlm and copy.deepcopy(Geometry) is Geometry
"""),
    # --- InputImages and FrameImage ---------------------------------------------------------------------
    ("ii_len_and_indices", """
print(len(InputImages), InputImages.frame_indices)
# check
assert InputImages.frame_indices == TRUTH['frame_indices'] and len(InputImages) == len(TRUTH['frame_indices'])
"""),
    ("ii_position_index", """
img = InputImages[2]
last = InputImages[-1]
print(img.frame_index, last.frame_index)
# check
assert img.frame_index == TRUTH['frame_indices'][2] and last.frame_index == TRUTH['frame_indices'][-1]
"""),
    ("ii_slice_keeps_indices", """
sub = InputImages[1:4]
every_other = InputImages[::2]
print(sub.frame_indices, every_other.frame_indices)
# check
assert isinstance(sub, type(InputImages)) and sub.frame_indices == TRUTH['frame_indices'][1:4]
assert every_other.frame_indices == TRUTH['frame_indices'][::2] and sub[0].frame_index == TRUTH['frame_indices'][1]
"""),
    ("ii_list_index_is_a_type_error", """
try:
    InputImages[[0, 1]]
    raised = False
except TypeError:
    raised = True
# check
assert raised
"""),
    ("ii_iterate", """
sizes = []
for img in InputImages:
    sizes.append((img.frame_index, img.width, img.height))
print(sizes[:2])
# check
assert all(w == TRUTH['width'] and h == TRUTH['height'] for _, w, h in sizes) and isinstance(InputImages, list)
"""),
    ("ii_constructor", """
ImagesType = type(InputImages)
mine = ImagesType([InputImages[0].image, InputImages[1].image], frame_indices=[40, 41])
plain = ImagesType([InputImages[0].image, InputImages[1].image])
# check
assert mine.frame_indices == [40, 41] and plain.frame_indices == [0, 1] and mine[1].width == TRUTH['width']
"""),
    ("fi_delegated_attributes", """
f = InputImages[0]
print(f.frame_index, f.width, f.height, f.size, f.mode)
# check
assert f.size == (TRUTH['width'], TRUTH['height']) and f.mode == 'RGB'
"""),
    ("fi_image_is_pil_but_frame_is_not", """
from PIL import Image
f = InputImages[1]
# check
assert isinstance(f.image, Image.Image) and not isinstance(f, Image.Image) and f.image.size == f.size
"""),
    ("fi_numpy_array", """
arr = np.array(InputImages[0])
arr2 = np.asarray(InputImages[3])
# check
assert arr.shape == (TRUTH['height'], TRUTH['width'], 3) and arr.dtype == np.uint8 and arr2.shape == arr.shape
"""),
    ("fi_pil_methods_return_pil", """
from PIL import Image
small = InputImages[0].resize((160, 120))
gray = InputImages[0].convert('L')
crop = InputImages[0].crop((10, 10, 50, 40))
rebuilt = Image.fromarray(np.array(InputImages[0]))
# check
assert small.size == (160, 120) and gray.mode == 'L' and crop.size == (40, 30) and rebuilt.size == InputImages[0].size
"""),
    ("fi_more_pil_delegation", """
f = InputImages[2]
pixel = f.getpixel((5, 5))
copy_img = f.copy()
thumb = f.resize((f.width // 4, f.height // 4))
# check
assert len(pixel) == 3 and copy_img.size == f.size and thumb.size == (TRUTH['width'] // 4, TRUTH['height'] // 4)
assert tuple(np.array(f)[5, 5]) == pixel
"""),
    ("ii_frame_by_absolute_index", """
fi = InputImages.frame_indices[-1]
img = InputImages.frame(fi)
try:
    InputImages.frame(12345)
    missing = False
except KeyError:
    missing = True
# check
assert img.frame_index == fi and missing
"""),
    ("fi_constructor_and_is_loaded", """
FrameType = type(InputImages[0])
g = FrameType(np.zeros((30, 40, 3), np.uint8), 7)
before = g.is_loaded
pil = g.image
shrunk = FrameType(InputImages[0].image, 0, max_edge=160)
# check
assert not before and g.is_loaded and g.frame_index == 7 and pil.size == (40, 30) and shrunk.size == (160, 120)
"""),
    ("fi_path_is_refused", """
FrameType = type(InputImages[0])
try:
    FrameType('frame.png', 0)
    refused = False
except TypeError as err:
    refused = 'cannot read image files' in str(err)
# check
assert refused
"""),
    # --- Metadata -------------------------------------------------------------------------------------
    ("md_basic_fields", """
print(Metadata.is_video, Metadata.fps, Metadata.total_frames, Metadata.duration_sec, Metadata.num_images)
# check
assert Metadata.is_video is True and Metadata.fps == 2.0 and Metadata.num_images == len(TRUTH['frame_indices'])
assert Metadata.total_frames == len(TRUTH['frame_indices']) and abs(Metadata.duration_sec - 2.5) < 1e-6
"""),
    ("md_video_fields", """
print(Metadata.video_source, Metadata.videos, Metadata.num_videos)
# check
assert isinstance(Metadata.video_source, str) and Metadata.num_videos == 1
assert Metadata.videos[0]['name'] == 'front' and Metadata.videos[0]['num_frames'] == len(TRUTH['frame_indices'])
assert Metadata.videos[0]['fps'] == 2.0 and abs(Metadata.videos[0]['duration_sec'] - 2.5) < 1e-6
"""),
    ("md_reconstruct_max_frames", """
limit = Metadata.reconstruct_max_frames
print(limit)
# check
assert limit == 64
"""),
    ("md_cameras_and_frames", """
print(Metadata.cameras, Metadata.frame_indices, Metadata.world_frame, Metadata.perception)
# check
assert Metadata.cameras == ['front'] and Metadata.frame_indices == InputImages.frame_indices
"""),
    ("md_to_dict", """
import json
d = Metadata.to_dict()
text = json.dumps(d)
# check
assert d['num_images'] == Metadata.num_images and 'videos' in d and Metadata['fps'] == Metadata.fps
"""),
    # --- show() and feedback -------------------------------------------------------------------------
    ("sh_one_image", """
show(InputImages[0])
""", {"images": 1, "output": ("[show() budget]",)}),
    ("sh_label", """
show(InputImages[0], label='first key frame')
""", {"images": 1}),
    ("sh_several_arguments", """
show(InputImages[0], InputImages[1], label='pair')
""", {"images": 2}),
    ("sh_flat_list", """
show(InputImages[:3])
""", {"images": 3}),
    ("sh_iterable", """
show(img for img in InputImages[::3])
""", {"images": 2}),
    ("sh_uint8_arrays", """
show(np.zeros((40, 60, 3), np.uint8), (np.arange(80 * 100) % 255).astype(np.uint8).reshape(80, 100))
""", {"images": 2}),
    ("sh_float_array_is_a_type_error", """
try:
    show(np.random.rand(20, 20) * 5.0)
    message = ''
except TypeError as err:
    message = str(err)
print(message)
# check
assert message.startswith('show() got') and 'expected' in message
""", {"images": 0}),
    ("sh_str_and_caption_are_type_errors", """
errors = []
for args in (('a caption',), (InputImages[0], 'caption')):
    try:
        show(*args)
    except TypeError as err:
        errors.append(str(err))
# check
assert len(errors) == 2 and all(e.startswith('show() got str') for e in errors) and "label=" in errors[1]
""", {"images": 0}),
    ("sh_tuple_inside_list_is_a_type_error", """
try:
    show([(InputImages[0], InputImages[1])])
    raised = False
except TypeError:
    raised = True
# check
assert raised
""", {"images": 0}),
    ("sh_no_arguments", """
show()
""", {"images": 0, "output": ("nothing to show",)}),
    ("fb_feedback_show", """
feedback.show(InputImages[1], label='via feedback')
""", {"images": 1}),
    ("fb_log_visual", """
feedback.log_visual(InputImages[1], source='debug')
feedback.log_visual([InputImages[0], InputImages[2]])
""", {"images": 0}),
    ("plt_show_labels_with_the_title", """
plt.figure(figsize=(3, 2))
plt.plot([1, 2, 3])
plt.title('depth profile')
plt.show()
""", {"images": 1}),
    # --- vlm, parsed the reference way, then SAM3 ---------------------------------------------------
    ("vl_locate_box_split", """
img = InputImages[0]
answer = vlm.locate(img, 'Locate the chair. Give its bounding box as x1 y1 x2 y2 on a 0-1000 scale. ONLY the numbers.')
print(answer)
nums = [float(v) for v in answer.split()]
chair_box = tools.Geometry.normalized_to_pixel(nums, img.width, img.height)
# check
assert isinstance(answer, str) and 'Not visible' not in answer and len(nums) == 4
assert box_iou(chair_box, TRUTH['boxes']['chair'][img.frame_index]) > 0.9
""", {"output": ("[VLM Q | locate] Locate the chair.", "[VLM A | locate] ")}),
    ("vl_locate_point_regex", """
import re
img = InputImages[0]
answer = vlm.locate(img, 'Where is the table? Give its center point (x, y), ONLY the numbers.')
nums = [int(n) for n in re.findall(r'\\d+', answer)]
table_xy = tools.Geometry.normalized_to_pixel(nums[:2], img.width, img.height)
# check
x1, y1, x2, y2 = TRUTH['boxes']['table'][img.frame_index]
assert x1 <= table_xy[0] <= x2 and y1 <= table_xy[1] <= y2
"""),
    ("vl_locate_not_visible", """
answer = vlm.locate(InputImages[0], 'Give the bounding box of the piano as x1 y1 x2 y2.')
if 'Not visible' in answer:
    piano_box = None
else:
    piano_box = [int(v) for v in answer.split()]
# check
assert piano_box is None and answer.startswith('Not visible')
"""),
    ("vl_locate_fenced_json", """
import json
answer = vlm.locate(InputImages[1], 'Detect the sofa. Return JSON with its box as bbox_2d.')
body = answer.split('```')[1]
if body.startswith('json'):
    body = body[4:]
detections = json.loads(body)
sofa_box = tools.Geometry.normalized_to_pixel(detections[0]['bbox_2d'], InputImages[1].width, InputImages[1].height)
# check
assert detections[0]['label'] == 'sofa' and box_iou(sofa_box, TRUTH['boxes']['sofa'][InputImages[1].frame_index]) > 0.9
"""),
    ("vl_locate_commas_brackets", """
import json
answer = vlm.locate(InputImages[2], 'Bounding box of the cabinet as [x1, y1, x2, y2] with commas.')
cabinet_box = tools.Geometry.normalized_to_pixel(json.loads(answer), InputImages[2].width, InputImages[2].height)
# check
assert box_iou(cabinet_box, TRUTH['boxes']['cabinet'][InputImages[2].frame_index]) > 0.9
"""),
    ("vl_locate_label_list", """
import re
answer = vlm.locate(InputImages[0], 'Box of the trash can in the form label: [x1, y1, x2, y2]')
m = re.search(r'\\[([^\\]]+)\\]', answer)
nums = [float(v) for v in m.group(1).split(',')]
# check
assert answer.startswith('trash can:') and len(nums) == 4
"""),
    ("vl_locate_visual_input_forms", """
answers = [
    vlm.locate(InputImages[0].image, 'center of the chair, x y'),
    vlm.locate(np.array(InputImages[0]), 'center of the chair, x y'),
    vlm.locate([InputImages[0], InputImages[1]], 'center of the chair in the first image, x y'),
    vlm.locate(InputImages[:2], 'center of the chair in the first image, x y'),
]
# check
assert all(isinstance(a, str) and len(a.split()) == 2 for a in answers) and len(set(answers)) == 1
"""),
    ("vl_locate_parsed_members", """
answer = vlm.locate(InputImages[0], 'The chair: box x1 y1 x2 y2, ONLY the numbers.')
print(answer.visible, answer.numbers, answer.box, answer.point)
# check
assert answer.visible and len(answer.numbers) == 4 and box_iou(answer.box, TRUTH['boxes']['chair'][0]) > 0.9
assert np.allclose(answer.point, [(answer.box[0] + answer.box[2]) / 2, (answer.box[1] + answer.box[3]) / 2])
"""),
    ("vl_locate_keeps_eight_images", """
answer = vlm.locate(list(InputImages) * 2, 'center of the chair in the first image, x y')
# check
assert isinstance(answer, str)
""", {"output": ("at most 8 are sent",)}),
    ("vl_locate_type_errors", """
errors = 0
for bad in ('the chair', [[InputImages[0]]]):
    try:
        vlm.locate(bad, 'where is the chair?')
    except TypeError:
        errors += 1
# check
assert errors == 2
"""),
    ("vl_ask_count", """
reply = vlm.ask_with_thinking(InputImages[:3], 'How many chairs are in the first image? Answer with a number.')
print(reply)
count = int(reply.strip().split()[-1])
# check
assert isinstance(reply, str) and count == 1
"""),
    ("vl_ask_left_of", """
reply = vlm.ask_with_thinking(InputImages[0], 'Is the table left of the chair in this image? Answer yes or no.')
is_left = 'yes' in reply.lower().split('answer:')[-1]
# check
tb, cb = TRUTH['boxes']['table'][0], TRUTH['boxes']['chair'][0]
assert is_left == ((tb[0] + tb[2]) < (cb[0] + cb[2]))
"""),
    ("vl_ask_visual_feedback_and_arrays", """
vis = tools.Graph.plot([1.0, 2.0, 3.0], y_label='m')
reply = vlm.ask_with_thinking([vis, np.array(InputImages[0])], 'What does the chart show?')
# check
assert isinstance(reply, str) and reply
"""),
    # --- the reference's parsing flow end to end: locate, check, parse, to pixels, SAM3 ------------
    ("e2e_locate_box_to_sam3", """
img = InputImages[0]
answer = vlm.locate(img, 'Find the chair. Bounding box (x1, y1, x2, y2) on 0-1000, ONLY the numbers.')
if 'Not visible' in answer:
    raise RuntimeError('no chair')
nums = [float(v) for v in answer.replace(',', ' ').split()]
box = tools.Geometry.normalized_to_pixel(nums, img.width, img.height)
chair = tools.SAM3.segment_image_by_box(img, box, 'chair')
chair_mask = chair.get_mask(img.frame_index, 'chair')
# check
assert box_iou(mask_box(chair_mask), TRUTH['boxes']['chair'][img.frame_index]) > 0.8
assert abs(chair_mask.sum() - TRUTH['areas']['chair'][img.frame_index]) < 0.3 * TRUTH['areas']['chair'][img.frame_index]
"""),
    ("e2e_locate_point_to_sam3", """
img = InputImages[0]
answer = vlm.locate(img, 'Point at the center of the table: x y')
x, y = tools.Geometry.normalized_to_pixel([float(v) for v in answer.split()[:2]], img.width, img.height)
table = tools.SAM3.segment_image_by_points(img, [[x, y]], [1], label='table')
table_mask = table.get_mask(img.frame_index, 0)
# check
assert box_iou(mask_box(table_mask), TRUTH['boxes']['table'][img.frame_index]) > 0.7
"""),
    ("e2e_locate_skip_not_visible", """
found = {}
for name in ['chair', 'piano', 'table']:
    answer = vlm.locate(InputImages[0], f'Bounding box of the {name}: x1 y1 x2 y2, numbers only')
    if 'Not visible' in answer:
        continue
    nums = [float(v) for v in answer.split()]
    found[name] = tools.SAM3.segment_image_by_box(InputImages[0], tools.Geometry.normalized_to_pixel(nums, 320, 240), name)
# check
assert sorted(found) == ['chair', 'table']
"""),
    ("e2e_locate_answer_box_directly", """
answer = vlm.locate(InputImages[3], 'The sofa: box x1 y1 x2 y2.')
sofa = SAM3.segment_image_by_box(InputImages[3], answer.box, label='sofa')
# check
assert box_iou(mask_box(sofa.get_mask(InputImages[3].frame_index)), TRUTH['boxes']['sofa'][InputImages[3].frame_index]) > 0.7
"""),
    ("e2e_locate_then_track", """
f0 = InputImages[0].frame_index
labels, boxes = [], []
for name in ['chair', 'table', 'piano']:
    answer = vlm.locate(InputImages[0], f'Give the bounding box of the {name}: x1 y1 x2 y2 (0-1000), ONLY numbers')
    if 'Not visible' in answer:
        continue
    labels.append(name)
    boxes.append(tools.Geometry.normalized_to_pixel([float(v) for v in answer.split()], InputImages[0].width,
                                                    InputImages[0].height))
tracked = tools.SAM3.segment_video_by_box(boxes, labels, prompt_frame_idx=f0)
# check
assert tracked.labels == ['chair', 'table'] and tracked.num_frames == len(InputImages)
fl = InputImages[-1].frame_index
assert box_iou(mask_box(tracked.get_mask(fl, 'chair')), TRUTH['boxes']['chair'][fl]) > 0.6
"""),
    ("e2e_count_frames_with_an_object", """
r = tools.SAM3.is_object_exist(list(InputImages), 'trash can')
frames_with = [fi for fi, seen in zip(InputImages.frame_indices, r['exists']) if seen]
# check
assert frames_with == sorted(TRUTH['boxes']['trash can'])
"""),
    ("e2e_ask_then_answer_letter", """
reply = vlm.ask_with_thinking(InputImages[0], 'Is the chair left of the table? Answer yes or no.')
choice = 'A' if 'yes' in reply.lower().split('answer:')[-1] else 'B'
# check
cb, tb = TRUTH['boxes']['chair'][0], TRUTH['boxes']['table'][0]
assert choice == ('A' if cb[0] + cb[2] < tb[0] + tb[2] else 'B')
"""),
    # --- tools.Reconstruct and the Reconstruction ----------------------------------------------------
    ("rc_reconstruct_all", """
recon = tools.Reconstruct.Reconstruct(InputImages)
print(recon, recon.frame_indices, recon.num_frames, len(recon))
# check
assert recon.frame_indices == InputImages.frame_indices and recon.num_frames == len(recon) == len(InputImages)
"""),
    ("rc_point_maps", """
fi = InputImages[1].frame_index
pts = recon.points[fi]
all_pts = recon.points.points
conf = recon.points.confidence
print(pts.shape, all_pts.shape, conf.shape, float(np.nanmax(conf)))
# check
h, w = TRUTH['height'], TRUTH['width']
assert pts.shape == (h, w, 3) and all_pts.shape == (len(recon), h, w, 3) and conf.shape == (len(recon), h, w)
u, v, d = w // 2, h // 2, TRUTH['depth_centre'][fi]
cam = [(u - TRUTH['cx']) / TRUTH['fx'] * d, (v - TRUTH['cy']) / TRUTH['fy'] * d, d, 1.0]
assert near(pts[v, u], (np.array(TRUTH['poses'][fi]) @ cam)[:3], 1e-3)
"""),
    ("rc_depth_maps", """
fi = InputImages[2].frame_index
depth = recon.depth[fi]
# check
assert abs(depth[TRUTH['height'] // 2, TRUTH['width'] // 2] - TRUTH['depth_centre'][fi]) < 1e-4
assert recon.depth.depth.shape == (len(recon), TRUTH['height'], TRUTH['width'])
assert recon.depth.confidence.shape == recon.depth.depth.shape
"""),
    ("rc_intrinsics", """
fi = InputImages[0].frame_index
K = recon.intrinsics[fi]
print(K)
# check
assert set(K) == {'fx', 'fy', 'cx', 'cy'} and abs(K['fx'] - TRUTH['fx']) < 1e-6 and abs(K['cy'] - TRUTH['cy']) < 1e-6
assert recon.intrinsics.fx.shape == (len(recon),) and np.allclose(recon.intrinsics.cx, TRUTH['cx'])
assert np.allclose(recon.intrinsics.fy, TRUTH['fy'])
"""),
    ("rc_extrinsics", """
fi = InputImages[4].frame_index
c2w = recon.extrinsics[fi]
poses = recon.extrinsics.camera_poses
# check
assert c2w.shape == (4, 4) and np.allclose(c2w, TRUTH['poses'][fi], atol=1e-6) and poses.shape == (len(recon), 4, 4)
"""),
    ("rc_extrinsic_columns_say_left_and_right", """
fi = InputImages[0].frame_index
c2w = recon.extrinsics[fi]
right, forward, position = c2w[:3, 0], c2w[:3, 2], c2w[:3, 3]
side = {name: float(np.dot(np.array(TRUTH['centres'][name]) - position, right)) for name in ['chair', 'table']}
# check
assert side['chair'] > side['table']  # the chair is to the right of the table, as in the image
assert forward @ (np.array(TRUTH['centres']['chair']) - position) > 0
"""),
    ("rc_points_are_mostly_valid", """
fi = InputImages[0].frame_index
valid = np.isfinite(recon.points[fi]).all(axis=-1)
conf = recon.points.confidence
# check
assert valid.mean() > 0.9 and conf.min() >= 0.0 and conf.max() <= 1.0
"""),
    ("rc_camera_motion_from_extrinsics", """
first, last = InputImages[0].frame_index, InputImages[-1].frame_index
moved = tools.Geometry.euclidean_distance(recon.extrinsics[first][:3, 3], recon.extrinsics[last][:3, 3])
turn = tools.Geometry.angle_between_vectors(recon.extrinsics[first][:3, 2], recon.extrinsics[last][:3, 2])
left = np.cross(recon.extrinsics[first][:3, 2], recon.extrinsics[last][:3, 2]) @ -recon.extrinsics[first][:3, 1] > 0
print(moved, turn, left)
# check
assert abs(moved - 0.25) < 0.01 and abs(turn - 12.0) < 1.0 and left
"""),
    ("rc_world_points_by_hand", """
fi = InputImages[3].frame_index
K, c2w, depth = recon.intrinsics[fi], recon.extrinsics[fi], recon.depth[fi]
v, u = 100, 200
cam = np.array([(u - K['cx']) / K['fx'] * depth[v, u], (v - K['cy']) / K['fy'] * depth[v, u], depth[v, u], 1.0])
# check
assert near((c2w @ cam)[:3], recon.points[fi][v, u], 1e-3)
"""),
    ("rc_metric_scale_and_gravity", """
print(recon.metric_scale, recon.gravity_direction)
# check
assert recon.metric_scale == 1.0 and recon.gravity_direction.shape == (3,)
assert abs(np.linalg.norm(recon.gravity_direction) - 1.0) < 1e-9
"""),
    ("rc_get_by_frame_index", """
local = recon.get_by_frame_index(InputImages[3].frame_index)
# check
assert local == 3 and np.allclose(recon.points.points[local], recon.points[InputImages[3].frame_index], equal_nan=True)
"""),
    ("rc_validate_alignment", """
ok = recon.validate_alignment(recon)
part = tools.Reconstruct.Reconstruct(InputImages[:2])
try:
    recon.validate_alignment(part)
    mismatch = False
except ValueError:
    mismatch = True
# check
assert ok and mismatch and recon.validate_alignment(part, strict=False)
"""),
    ("rc_slices_lists_tuples_single", """
a = tools.Reconstruct.Reconstruct(InputImages[::2])
b = tools.Reconstruct.Reconstruct([InputImages[0], InputImages[3]])
c = tools.Reconstruct.Reconstruct((InputImages[1],))
d = tools.Reconstruct.Reconstruct(InputImages[2])
# check
assert a.frame_indices == InputImages.frame_indices[::2] and b.frame_indices == [InputImages[0].frame_index, InputImages[3].frame_index]
assert c.num_frames == 1 and d.frame_indices == [InputImages[2].frame_index]
"""),
    ("rc_repeated_frames", """
r = tools.Reconstruct.Reconstruct([InputImages[0], InputImages[0], InputImages[1]])
# check
f0, f1 = InputImages[0].frame_index, InputImages[1].frame_index
assert r.frame_indices == [f0, f0, f1] and r.points.points.shape[0] == 3 and r.get_by_frame_index(f0) == 0
"""),
    ("rc_frame_indices_argument", """
r = tools.Reconstruct.Reconstruct([InputImages[1].image], frame_indices=[InputImages[1].frame_index])
# check
assert r.frame_indices == [InputImages[1].frame_index]
"""),
    ("rc_bare_and_imported_names", """
r1 = Reconstruct.Reconstruct(InputImages[:2])
r2 = Reconstruct(InputImages[:2])
from tools.Reconstruct import Reconstruct
r3 = Reconstruct(InputImages[:2])
Reconstruct = tools.Reconstruct
# check
assert r1.frame_indices == r2.frame_indices == r3.frame_indices == InputImages.frame_indices[:2]
"""),
    ("rc_frame_limit_errors", """
messages = []
for frames in ([], [InputImages[0]] * 65):
    try:
        tools.Reconstruct.Reconstruct(frames)
    except ValueError as err:
        messages.append(str(err))
print(messages[1])
# check
assert len(messages) == 2 and 'at most 64 frames, got 65' in messages[1] and 'InputImages[::' in messages[1]
"""),
    ("rc_keyerror_lists_frames", """
try:
    recon.points[999]
    message = ''
except KeyError as err:
    message = str(err)
print(message)
# check
assert 'Frame 999 not found' in message and str(TRUTH['frame_indices']) in message
"""),
    ("rc_index_types", """
fi = InputImages[1].frame_index
same = recon.points[np.int64(fi)]
try:
    recon.depth[1.5]
    type_error = False
except TypeError:
    type_error = True
# check
assert same.shape[2] == 3 and type_error
"""),
    ("rc_frames_of_another_type", """
try:
    tools.Reconstruct.Reconstruct('all frames')
    raised = False
except TypeError:
    raised = True
# check
assert raised
"""),
    ("rc_is_available", """
print(tools.Reconstruct.is_available, tools.SAM3.is_available)
# check
assert tools.Reconstruct.is_available and tools.SAM3.is_available
"""),
    ("vf_constructor", """
FeedbackType = type(tools.Graph.plot([1.0, 2.0]))
mine = FeedbackType(InputImages[0].image, 'my cell', 'the first frame', frame_index=InputImages[0].frame_index)
try:
    FeedbackType(np.zeros((4, 4, 3), np.uint8), 'x', 'y')
    raised = False
except TypeError:
    raised = True
show(mine)
# check
assert raised and mine.source == 'my cell' and mine.description == 'the first frame' and mine.frame_index == 0
""", {"images": 1}),
    ("rc_render_bev_cameras_only", """
bev = recon.render_bev()
show(bev)
print(bev.description)
# check
assert bev.source == 'Reconstruction.render_bev' and bev.frame_index is None and 'cameras' in bev.description
assert bev.image.size[0] >= 400
""", {"images": 1}),
    # --- SAM3 image methods ------------------------------------------------------------------------------
    ("sm_text", """
img = InputImages[0]
chair_t = tools.SAM3.segment_image_by_text(img, 'chair')
print(chair_t.labels, chair_t.masks.shape)
# check
assert chair_t.labels == ['chair'] and chair_t.masks.shape == (1, 1, TRUTH['height'], TRUTH['width'])
assert box_iou(mask_box(chair_t.get_mask(img.frame_index)), TRUTH['boxes']['chair'][img.frame_index]) > 0.7
"""),
    ("sm_text_label_positional_and_threshold", """
t = tools.SAM3.segment_image_by_text(InputImages[1], 'table', 'dining table', confidence_threshold=0.5)
# check
assert t.labels == ['dining table'] and t.num_objects == 1
"""),
    ("sm_text_errors", """
errors = []
try:
    tools.SAM3.segment_image_by_text(InputImages[0], '')
except ValueError as err:
    errors.append(str(err))
try:
    tools.SAM3.segment_image_by_text(InputImages[0], 'piano')
except RuntimeError as err:
    errors.append(str(err))
print(errors)
# check
assert len(errors) == 2 and 'no usable mask' in errors[1]
"""),
    ("sm_points", """
img = InputImages[0]
x, y = TRUTH['points']['table'][img.frame_index]
table_p = tools.SAM3.segment_image_by_points(img, [[x, y]], [1], label='table')
# check
assert table_p.labels == ['table'] and box_iou(mask_box(table_p.get_mask(img.frame_index)), TRUTH['boxes']['table'][img.frame_index]) > 0.7
"""),
    ("sm_points_flat_and_background", """
img = InputImages[0]
x, y = TRUTH['points']['chair'][img.frame_index]
bx, by = TRUTH['points']['table'][img.frame_index]
flat = tools.SAM3.segment_image_by_points(img, [x, y], [1])
with_bg = tools.SAM3.segment_image_by_points(img, [[x, y], [bx, by]], [1, 0], 'chair')
# check
assert flat.labels == ['object'] and with_bg.get_mask(img.frame_index)[by, bx] == False
assert with_bg.get_mask(img.frame_index)[y, x]
"""),
    ("sm_points_length_mismatch", """
try:
    tools.SAM3.segment_image_by_points(InputImages[0], [[10, 10], [20, 20]], [1])
    raised = False
except ValueError:
    raised = True
# check
assert raised
"""),
    ("sm_box", """
img = InputImages[0]
chair_b = tools.SAM3.segment_image_by_box(img, TRUTH['boxes']['chair'][img.frame_index], 'chair')
table_b = tools.SAM3.segment_image_by_box(img, box=TRUTH['boxes']['table'][img.frame_index], label='table')
# check
assert box_iou(mask_box(chair_b.get_mask(img.frame_index)), TRUTH['boxes']['chair'][img.frame_index]) > 0.8
assert box_iou(mask_box(table_b.get_mask(img.frame_index)), TRUTH['boxes']['table'][img.frame_index]) > 0.8
"""),
    ("sm_box_errors", """
try:
    tools.SAM3.segment_image_by_box(InputImages[0], [1, 2, 3])
    raised = False
except ValueError:
    raised = True
try:
    tools.SAM3.segment_image_by_box(InputImages[:2], [10, 10, 50, 50])
    one_image = False
except TypeError:
    one_image = True
# check
assert raised and one_image
"""),
    ("sm_box_on_a_plain_image", """
plain = tools.SAM3.segment_image_by_box(InputImages[0].image, TRUTH['boxes']['chair'][0], 'chair')
# check
assert plain.num_frames == 1 and plain.get_mask(plain.frame_indices[0]).any()
"""),
    ("sm_is_object_exist_one_image", """
r = tools.SAM3.is_object_exist(InputImages[0], 'chair')
print(r)
# check
assert r['exists'][0] is True and r['counts'] == [1] and isinstance(r['summary'], str)
"""),
    ("sm_is_object_exist_list", """
r = tools.SAM3.is_object_exist(list(InputImages[:3]), 'table')
seen = [fi for fi, e in zip(InputImages.frame_indices, r['exists']) if e]
# check
assert r['exists'] == [True, True, True] and len(r['counts']) == 3 and any(r['exists']) and seen == InputImages.frame_indices[:3]
"""),
    ("sm_is_object_exist_absent", """
r = tools.SAM3.is_object_exist(InputImages[:2], 'piano')
# check
assert r['exists'] == [False, False] and r['counts'] == [0, 0] and not any(r['exists'])
"""),
    ("sm_is_object_exist_errors", """
errors = 0
for args in (([], 'chair'), (InputImages[0], '')):
    try:
        tools.SAM3.is_object_exist(*args)
    except ValueError:
        errors += 1
# check
assert errors == 2
"""),
    ("sm_disabled_methods", """
messages = []
for method in (tools.SAM3.segment_image, tools.SAM3.segment_video):
    try:
        method(InputImages[0], 'chair')
    except RuntimeError as err:
        messages.append(str(err))
# check
assert len(messages) == 2 and '_by_text' in messages[0] and 'segment_video_by_box' in messages[1]
"""),
    # --- PerFrameMask ------------------------------------------------------------------------------------
    ("pm_attributes", """
seg = chair_b
print(seg.masks.shape, seg.labels, seg.object_ids, seg.frame_indices, seg.num_frames, seg.num_objects, len(seg))
# check
assert seg.masks.shape == (1, 1, TRUTH['height'], TRUTH['width']) and seg.labels == ['chair'] and seg.object_ids == [0]
assert seg.frame_indices == [InputImages[0].frame_index] and seg.num_frames == 1 and seg.num_objects == 1 and len(seg) == 1
"""),
    ("pm_frame_lookup", """
fi = InputImages[0].frame_index
stack = chair_b[fi]
# check
assert stack.shape == (1, TRUTH['height'], TRUTH['width']) and stack.dtype == bool
"""),
    ("pm_get_mask_by_index_and_label", """
fi = InputImages[0].frame_index
m1 = chair_b.get_mask(fi, 0)
m2 = chair_b.get_mask(frame=fi, object='chair')
# check
assert m1.shape == (TRUTH['height'], TRUTH['width']) and (m1 == m2).all()
"""),
    ("pm_get_mask_errors_list_labels", """
fi = InputImages[0].frame_index
found = []
for obj, kind in ((5, IndexError), ('sofa', KeyError)):
    try:
        chair_b.get_mask(fi, obj)
    except kind as err:
        found.append(str(err))
try:
    chair_b.get_mask(InputImages[4].frame_index)
except KeyError as err:
    found.append(str(err))
print(found)
# check
assert len(found) == 3 and 'chair' in found[0] and 'chair' in found[1] and 'not found' in found[2]
"""),
    ("pm_get_masked_points", """
fi = InputImages[0].frame_index
pts = chair_b.get_masked_points(recon, fi, 'chair')
# check
assert pts.ndim == 2 and pts.shape[1] == 3 and len(pts) > 100
assert near(np.median(pts, axis=0)[:2], TRUTH['centres']['chair'][:2], 0.4)
"""),
    ("pm_get_centroid_3d", """
fi = InputImages[0].frame_index
c = chair_b.get_centroid_3d(recon, frame=fi, object='chair')
c_strict = table_b.get_centroid_3d(recon, fi, 0, conf_threshold=0.5)
print(c, c_strict)
# check: the median of the visible surface, not the object's centre: from the camera's side, the table's top and
# front legs put it 0.51 m nearer than the table's centre even with a perfect mask
assert c.shape == (3,) and near(c[:2], TRUTH['centres']['chair'][:2], 0.4) and near(c_strict[:2], TRUTH['centres']['table'][:2], 0.6)
"""),
    ("pm_video_preview", """
video_preview = tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][0]], ['chair'], frame_indices=InputImages.frame_indices[:3])
try:
    video_preview.visualize()
    needs_frame = False
except TypeError:
    needs_frame = True
# check
assert needs_frame and video_preview.num_frames == 3
"""),
    ("pm_visualize", """
fi = InputImages[0].frame_index
vis = chair_b.visualize(fi)
vis2 = chair_b.visualize(frame=fi)
vis3 = chair_b.visualize(fi, background=np.zeros((TRUTH['height'], TRUTH['width'], 3), np.uint8))
show(vis, label='chair mask')
# check
assert vis.frame_index == fi and vis.source and vis.description and vis.image.size == (TRUTH['width'], TRUTH['height'])
assert np.array(vis3).sum() > 0 and vis2.frame_index == fi
""", {"images": 1}),
    ("pm_show_every_frame", """
show([video_preview.visualize(fi) for fi in video_preview.frame_indices], label='tracked')
""", {"images": 3}),
    ("pm_mask_shown_as_bool", """
show(chair_b.get_mask(InputImages[0].frame_index, 0), label='mask')
""", {"images": 1}),
    # --- SAM3 video methods --------------------------------------------------------------------------
    ("sv_box_two_objects", """
f0 = InputImages[0].frame_index
boxes = [TRUTH['boxes']['chair'][f0], TRUTH['boxes']['table'][f0]]
video = tools.SAM3.segment_video_by_box(boxes, ['chair', 'table'])
print(video)
# check
assert video.frame_indices == InputImages.frame_indices and video.labels == ['chair', 'table']
assert video.masks.shape == (len(InputImages), 2, TRUTH['height'], TRUTH['width']) and video.num_objects == 2
for fi in video.frame_indices:
    assert box_iou(mask_box(video.get_mask(fi, 'chair')), TRUTH['boxes']['chair'][fi]) > 0.6, fi
    assert box_iou(mask_box(video.get_mask(fi, 'table')), TRUTH['boxes']['table'][fi]) > 0.6, fi
"""),
    ("sv_box_single_flat", """
one = tools.SAM3.segment_video_by_box(TRUTH['boxes']['sofa'][InputImages[0].frame_index], ['sofa'])
# check
assert one.labels == ['sofa'] and one.num_frames == len(InputImages)
"""),
    ("sv_box_prompt_frame", """
fi = InputImages[2].frame_index
v = tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][fi]], ['chair'], prompt_frame_idx=fi)
# check
assert box_iou(mask_box(v.get_mask(fi, 'chair')), TRUTH['boxes']['chair'][fi]) > 0.8
"""),
    ("sv_window_without_prompt_frame", """
start, end = InputImages[2].frame_index, InputImages[5].frame_index
v = tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][start]], ['chair'], start_frame=start, end_frame=end)
# check
assert v.frame_indices == InputImages.frame_indices[2:5]
assert box_iou(mask_box(v.get_mask(start, 'chair')), TRUTH['boxes']['chair'][start]) > 0.8
"""),
    ("sv_window_local_prompt_frame", """
start = InputImages[1].frame_index
prompt_at = InputImages[3].frame_index
v = tools.SAM3.segment_video_by_box([TRUTH['boxes']['table'][prompt_at]], ['table'], prompt_frame_idx=prompt_at - start,
                                    start_frame=start, end_frame=start + 1000)
# check
assert v.frame_indices == InputImages.frame_indices[1:]
assert box_iou(mask_box(v.get_mask(prompt_at, 'table')), TRUTH['boxes']['table'][prompt_at]) > 0.8
"""),
    ("sv_frame_indices", """
wanted = InputImages.frame_indices[::2]
v = tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][wanted[0]]], ['chair'], frame_indices=wanted)
# check
assert v.frame_indices == wanted and v.masks.shape[0] == len(wanted)
"""),
    ("sv_text", """
texts = tools.SAM3.segment_video_by_text(['chair', 'table'], labels=['chair', 'table'], prompt_frame_idx=0)
# check
assert texts.labels == ['chair', 'table'] and texts.num_frames == len(InputImages)
for fi in texts.frame_indices[:3]:
    assert box_iou(mask_box(texts.get_mask(fi, 'table')), TRUTH['boxes']['table'][fi]) > 0.6
"""),
    ("sv_text_label_count_must_match", """
try:
    tools.SAM3.segment_video_by_text(['chair', 'table'], labels=['chair'])
    raised = False
except ValueError:
    raised = True
# check
assert raised
"""),
    ("sv_text_nothing_found", """
nothing = tools.SAM3.segment_video_by_text(['piano'])
# check
assert nothing.labels == ['piano'] and not nothing.masks.any()
""", {"output": ("found nothing",)}),
    ("sv_points", """
f0 = InputImages[0].frame_index
pts = tools.SAM3.segment_video_by_points(points_per_object=[[TRUTH['points']['chair'][f0]], [TRUTH['points']['table'][f0]]],
                                         point_labels_per_object=[[1], [1]], labels=['chair', 'table'])
# check
assert pts.labels == ['chair', 'table']
assert box_iou(mask_box(pts.get_mask(f0, 'chair')), TRUTH['boxes']['chair'][f0]) > 0.7
"""),
    ("sv_points_under_nested_and_background", """
f0 = InputImages[0].frame_index
one = tools.SAM3.segment_video_by_points(TRUTH['points']['chair'][f0], [1], ['chair'])
bg = tools.SAM3.segment_video_by_points([[TRUTH['points']['chair'][f0], TRUTH['points']['table'][f0]]], [[1, 0]], ['chair'])
tx, ty = TRUTH['points']['table'][f0]
# check
assert one.labels == ['chair'] and not bg.get_mask(f0, 0)[ty, tx]
"""),
    ("sv_video_index_single_camera", """
v = tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][0]], ['chair'], video_index=1, end_frame=3)
# check
assert v.frame_indices == [fi for fi in InputImages.frame_indices if fi < 3]
"""),
    ("sv_window_errors", """
messages = []
for start, end in ((0, 2000), (4, 2)):
    try:
        tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][0]], ['chair'], start_frame=start, end_frame=end)
    except ValueError as err:
        messages.append(str(err))
print(messages)
# check
assert len(messages) == 2 and 'at most 1000 frames' in messages[0] and 'end_frame' in messages[1]
"""),
    ("sv_masks_over_frames", """
centroids = [video.get_centroid_3d(recon, fi, 'chair') for fi in video.frame_indices]
# check
assert all(near(c[:2], TRUTH['centres']['chair'][:2], 0.4) for c in centroids)
"""),
    ("sv_distance_plot", """
values, valid = [], []
for fi in video.frame_indices:
    a, b = video.get_masked_points(recon, fi, 'chair'), video.get_masked_points(recon, fi, 'table')
    ok = len(a) > 0 and len(b) > 0
    valid.append(ok)
    values.append(tools.Geometry.closest_point_distance(a, b).value_m if ok else np.nan)
fb = tools.Graph.plot(np.array(values), validity=valid, y_label='distance (m)', title='chair to table')
show(fb)
print(fb.description)
# check
assert 'min=' in fb.description and all(valid)
""", {"images": 1}),
    ("sv_render_bev_with_masks", """
ref = InputImages[0].frame_index
bev = recon.render_bev(masks=video, labels=['chair', 'table'], ego_trajectory=True, ref_frame=ref)
show(bev)
print(bev.description)
# check
line = [l for l in bev.description.splitlines() if l.startswith('chair')][0]
side = np.dot(np.array(TRUTH['centres']['chair']) - recon.extrinsics[ref][:3, 3], recon.extrinsics[ref][:3, 0])
assert ('right' in line) == (side > 0) and 'forward' in line
""", {"images": 1}),
    ("sv_render_bev_raw_array", """
bev = recon.render_bev(masks=video.masks, labels=['chair', 'table'], conf_threshold=0.5, ego_trajectory=False)
# check
assert 'chair' in bev.description and 'table' in bev.description
"""),
    ("sv_render_bev_errors", """
errors = []
try:
    tools.Reconstruct.Reconstruct(InputImages[:3]).render_bev(masks=video.masks)
except ValueError as err:
    errors.append(str(err))
try:
    recon.render_bev(prompts=['chair'])
except ValueError as err:
    errors.append(str(err))
try:
    recon.render_bev(ref_frame=999)
except KeyError as err:
    errors.append(str(err))
print(errors)
# check
assert len(errors) == 3 and 'frame indices' in errors[0] and 'segment first' in errors[1] and 'not found' in errors[2]
"""),
    # --- tools.Geometry ------------------------------------------------------------------------------------
    ("ge_euclidean_and_angle", """
d3 = tools.Geometry.euclidean_distance([0, 0, 0], [3, 4, 0])
d2 = tools.Geometry.euclidean_distance([1, 1], [4, 5])
angle = tools.Geometry.angle_between_vectors([1, 0, 0], [0, 1, 0])
try:
    tools.Geometry.angle_between_vectors([0, 0, 0], [1, 0, 0])
    zero = False
except ValueError:
    zero = True
# check
assert d3 == 5.0 and d2 == 5.0 and abs(angle - 90.0) < 1e-9 and zero
"""),
    ("ge_project_point_to_camera", """
fi = InputImages[0].frame_index
K = recon.intrinsics[fi]
uv = tools.Geometry.project_point_to_camera(chair_b.get_centroid_3d(recon, fi), recon.extrinsics[fi], K['fx'], K['fy'], K['cx'], K['cy'])
behind = recon.extrinsics[fi][:3, 3] - 2.0 * recon.extrinsics[fi][:3, 2]
# check
x1, y1, x2, y2 = TRUTH['boxes']['chair'][fi]
assert x1 <= uv[0] <= x2 and y1 <= uv[1] <= y2
assert tools.Geometry.project_point_to_camera(behind, recon.extrinsics[fi], **K) is None
"""),
    ("ge_rotation_and_transform", """
R = tools.Geometry.rotation_matrix_from_vectors([0, 0, 1], [0, 1, 0])
T = np.eye(4)
T[:3, :3] = R
T[:3, 3] = [1, 2, 3]
moved = tools.Geometry.transform_points(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]), T)
grid = tools.Geometry.transform_points(recon.points[InputImages[0].frame_index], np.eye(4))
# check
assert np.allclose(R @ [0, 0, 1], [0, 1, 0]) and np.allclose(moved, [[1, 3, 3], [1, 2, 3]]) and grid.shape[2] == 3
"""),
    ("ge_points_into_the_camera", """
fi = InputImages[0].frame_index
cam_pts = tools.Geometry.transform_points(chair_b.get_masked_points(recon, fi), np.linalg.inv(recon.extrinsics[fi]))
# check
assert (cam_pts[:, 2] > 0).all() and abs(np.median(cam_pts[:, 2]) - 3.0) < 0.6
"""),
    ("ge_fit_ground_plane_ransac", """
fi = InputImages[0].frame_index
i = recon.get_by_frame_index(fi)
normal, inliers = tools.Geometry.fit_ground_plane_ransac(recon.points[fi], recon.points.confidence[i])
floor = recon.points[fi][inliers]
print(normal, inliers.sum())
# check
assert abs(abs(normal[2]) - 1.0) < 0.02 and inliers.shape == recon.points[fi].shape[:2] and abs(np.median(floor[:, 2])) < 0.03
"""),
    ("ge_fit_ground_plane_keywords_and_none", """
fi = InputImages[1].frame_index
normal, inliers = tools.Geometry.fit_ground_plane_ransac(recon.points[fi], recon.confidence[fi], conf_threshold=0.5,
                                                         n_iterations=200, inlier_threshold=0.03)
few = tools.Geometry.fit_ground_plane_ransac(np.random.rand(50, 3), np.ones(50))
# check
assert normal is not None and few == (None, None)
"""),
    ("ge_normalized_to_pixel", """
pt = tools.Geometry.normalized_to_pixel([500, 500], 320, 240)
box = tools.Geometry.normalized_to_pixel([100, 200, 300, 400], 320, 240)
try:
    tools.Geometry.normalized_to_pixel('500 500', 320, 240)
    str_error = False
except TypeError:
    str_error = True
# check
assert pt == [160.0, 120.0] and box == [32.0, 48.0, 96.0, 96.0] and str_error
"""),
    ("ge_normalized_to_pixel_warns_past_1000", """
big = tools.Geometry.normalized_to_pixel([1500, 20], 320, 240)
# check
assert big[0] == 480.0
""", {"output": ("outside 0-1000",)}),
    ("ge_table_height_from_the_floor", """
fi = InputImages[0].frame_index
i = recon.get_by_frame_index(fi)
normal, inliers = tools.Geometry.fit_ground_plane_ransac(recon.points[fi], recon.points.confidence[i])
floor_z = np.median(recon.points[fi][inliers][:, 2])
top = np.percentile(table_b.get_masked_points(recon, fi)[:, 2], 98)
print(top - floor_z)
# check
assert abs((top - floor_z) - 0.75) < 0.05
"""),
    ("ge_centroid_distance_by_hand", """
fi = InputImages[0].frame_index
d = tools.Geometry.euclidean_distance(chair_b.get_centroid_3d(recon, fi), table_b.get_centroid_3d(recon, fi))
# check
truth = np.linalg.norm(np.array(TRUTH['centres']['chair'][:2]) - TRUTH['centres']['table'][:2])
assert abs(d - truth) < 0.5
"""),
    ("ge_closest_distance_our_extra", """
chair_pts = np.vstack([video.get_masked_points(recon, fi, 'chair') for fi in video.frame_indices])
table_pts = np.vstack([video.get_masked_points(recon, fi, 'table') for fi in video.frame_indices])
d = tools.Geometry.closest_point_distance(chair_pts, table_pts)
print(d)
# check
assert abs(d.value_m - TRUTH['closest']['chair-table']) < 0.08
"""),
    # --- tools.Mask ------------------------------------------------------------------------------------------
    ("mk_area_centroid_box", """
fi = InputImages[0].frame_index
m = chair_b.get_mask(fi, 'chair')
area = tools.Mask.area(m)
cx, cy = tools.Mask.centroid(m)
bb = tools.Mask.bounding_box(m)
# check
x1, y1, x2, y2 = TRUTH['boxes']['chair'][fi]
assert abs(area - TRUTH['areas']['chair'][fi]) < 0.3 * TRUTH['areas']['chair'][fi]
assert x1 <= cx <= x2 and y1 <= cy <= y2 and box_iou(bb, TRUTH['boxes']['chair'][fi]) > 0.8 and all(isinstance(v, int) for v in bb)
"""),
    ("mk_centroids_of_a_stack", """
fi = InputImages[0].frame_index
cents = tools.Mask.centroids(video[fi])
# check
assert len(cents) == 2 and cents[0][0] > cents[1][0]  # the chair is right of the table
"""),
    ("mk_iou_and_intersection", """
fi = InputImages[0].frame_index
a, b = video.get_mask(fi, 'chair'), chair_b.get_mask(fi, 'chair')
iou = tools.Mask.iou(a, b)
inter = tools.Mask.intersection(a, b)
# check
assert iou > 0.6 and inter.dtype == bool and inter.sum() <= min(a.sum(), b.sum())
assert tools.Mask.iou(a, video.get_mask(fi, 'table')) < 0.05
"""),
    ("mk_mask_to_bbox", """
bb = tools.Mask.mask_to_bbox(video.get_mask(InputImages[0].frame_index, 'table'))
again = tools.SAM3.segment_image_by_box(InputImages[0], bb, 'table')
# check
assert bb.dtype == np.float64 and bb.shape == (4,) and again.get_mask(InputImages[0].frame_index).any()
"""),
    # --- tools.Time ------------------------------------------------------------------------------------------
    ("tm_frame_to_seconds", """
secs = [tools.Time.frame_to_seconds(fi) for fi in InputImages.frame_indices]
# check
assert np.allclose(secs, [TRUTH['seconds'][fi] for fi in InputImages.frame_indices])
"""),
    ("tm_seconds_to_frame", """
fi = tools.Time.seconds_to_frame(1.0)
clamped = tools.Time.seconds_to_frame(100.0)
# check
assert fi == 2 and clamped == InputImages.frame_indices[-1] and tools.Time.seconds_to_frame(-5) == InputImages.frame_indices[0]
"""),
    ("tm_frame_range_and_frame_at_time", """
duration = tools.Time.frame_range_to_seconds(InputImages[0].frame_index, InputImages[4].frame_index)
fi = tools.Time.get_frame_at_time(0.6)
img = InputImages.frame(fi)
# check
assert abs(duration - 2.0) < 1e-9 and fi == 1 and img.frame_index == 1
"""),
    # --- tools.Graph and tools.Draw ------------------------------------------------------------------------
    ("gr_plot", """
fb = tools.Graph.plot([0.9, 0.8, 0.7, 0.65, 0.6])
show(fb)
# check
assert fb.source and 'trend=decreasing' in fb.description and fb.frame_index is None
""", {"images": 1}),
    ("gr_plot_needs_values", """
try:
    tools.Graph.plot([])
    raised = False
except ValueError:
    raised = True
# check
assert raised
"""),
    ("gr_plot_labels_and_gaps", """
fb = tools.Graph.plot(np.array([1.0, 2.0, 99.0, 4.0]), validity=[True, True, False, True], x_label='Frame',
                      y_label='Height (m)', title='height over time')
# check
assert 'max=4' in fb.description and 'n=3' in fb.description
"""),
    ("dr_bbox", """
img = InputImages[0]
box = TRUTH['boxes']['chair'][img.frame_index]
drawn = tools.Draw.draw_bbox(img, box, colors='red', thickness=2)
show(drawn)
# check
assert drawn.size == img.size and tuple(np.array(drawn)[box[1], (box[0] + box[2]) // 2]) == (255, 0, 0)
assert np.array(img).sum() != np.array(drawn).sum()
""", {"images": 1}),
    ("dr_bboxes_with_colours", """
img = InputImages[0]
boxes = [TRUTH['boxes']['chair'][img.frame_index], TRUTH['boxes']['table'][img.frame_index]]
drawn = tools.Draw.draw_bbox(np.array(img), boxes, colors=['red', (0, 255, 0)])
try:
    tools.Draw.draw_bbox(img, boxes, colors=['red', 'blue', 'yellow'])
    mismatch = False
except ValueError:
    mismatch = True
# check
assert tuple(np.array(drawn)[boxes[1][1], (boxes[1][0] + boxes[1][2]) // 2]) == (0, 255, 0) and mismatch
"""),
    ("dr_lines", """
img = InputImages[0]
a, b = TRUTH['points']['chair'][img.frame_index], TRUTH['points']['table'][img.frame_index]
one = tools.Draw.draw_line(img, [a[0], a[1], b[0], b[1]], colors='yellow', thickness=3)
two = tools.Draw.draw_line(img.image, [[a, b], [[0, 0], [50, 50]]], colors=['red', 'blue'])
# check
mid = ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)
assert tuple(np.array(one)[mid[1], mid[0]]) == (255, 255, 0) and two.size == img.size
"""),
    ("dr_points", """
img = InputImages[0]
pts = [TRUTH['points']['chair'][img.frame_index], TRUTH['points']['table'][img.frame_index]]
drawn = tools.Draw.draw_point(img, pts, colors='blue', radius=4)
single = tools.Draw.draw_point(img, pts[0])
# check
assert tuple(np.array(drawn)[pts[0][1], pts[0][0]]) == (0, 0, 255) and single.size == img.size
"""),
    ("dr_on_a_visual_feedback", """
drawn = tools.Draw.draw_bbox(chair_b.visualize(InputImages[0].frame_index), TRUTH['boxes']['chair'][0])
show(drawn, label='annotated')
""", {"images": 1}),
    # --- ReturnAnswer ------------------------------------------------------------------------------------
    ("ra_errors", """
messages = []
for bad, kind in ((None, TypeError), ('   ', ValueError)):
    try:
        ReturnAnswer(bad)
    except kind as err:
        messages.append(str(err))
# check
assert len(messages) == 2
"""),
    ("ra_str_is_stripped", """
ReturnAnswer('  B  ')
""", {"answer": "B"}),
    ("ra_int", """
ReturnAnswer(3)
""", {"answer": 3}),
    ("ra_float_numpy", """
d = tools.Geometry.euclidean_distance(chair_b.get_centroid_3d(recon, 0), table_b.get_centroid_3d(recon, 0))
ReturnAnswer(np.float64(round(d, 2)))
""", {"answer": "number"}),
    ("ra_float", """
ReturnAnswer(0.56)
""", {"answer": 0.56}),
    ("ra_bool", """
ReturnAnswer(True)
""", {"answer": True}),
    ("ra_numpy_str", """
ReturnAnswer(np.str_('A'))
""", {"answer": "A"}),
    ("ra_with_unit_and_evidence", """
d = tools.Geometry.closest_point_distance(chair_pts, table_pts)
ReturnAnswer(round(d.value_m, 3), unit='m', evidence=d)
""", {"answer": "number"}),
)

CAMERAS = _session(
    "cameras",
    ("mc_inputimages_per_camera", """
print(InputImages_1, InputImages_2)
# check
assert len(InputImages_1) + len(InputImages_2) == len(InputImages)
assert InputImages_1[0].camera == Metadata.cameras[0] == 'front' and InputImages_2[0].camera == 'side'
assert set(InputImages_1.frame_indices).isdisjoint(InputImages_2.frame_indices)
"""),
    ("mc_metadata_videos", """
print(Metadata.videos, Metadata.num_videos, Metadata.fps, Metadata.num_images)
# check
assert Metadata.num_videos == 2 and [v['name'] for v in Metadata.videos] == ['front', 'side']
assert Metadata.videos[1]['num_frames'] == len(InputImages_2) and Metadata.fps is None
assert Metadata.num_images == len(InputImages) and Metadata.is_video
"""),
    ("mc_video_loop", """
per_video = {}
for i in range(1, Metadata.num_videos + 1):
    frames = [InputImages_1, InputImages_2][i - 1]
    per_video[Metadata.videos[i - 1]['name']] = frames.frame_indices
# check
assert per_video == {'front': [0, 1, 2], 'side': [100, 101, 102]}
"""),
    ("mc_reconstruct_across_cameras", """
recon = tools.Reconstruct.Reconstruct(InputImages)
f1, f2 = InputImages_1[0].frame_index, InputImages_2[0].frame_index
a = tools.SAM3.segment_image_by_box(InputImages_1[0], TRUTH['boxes']['chair'][f1], 'chair').get_centroid_3d(recon, f1)
b = tools.SAM3.segment_image_by_box(InputImages_2[0], TRUTH['boxes']['chair'][f2], 'chair').get_centroid_3d(recon, f2)
print(a, b)
# check
assert near(a[:2], TRUTH['centres']['chair'][:2], 0.4) and near(b[:2], TRUTH['centres']['chair'][:2], 0.4)
"""),
    ("mc_locate_in_the_second_video", """
img = InputImages_2[0]
answer = vlm.locate(img, 'The table: bounding box x1 y1 x2 y2, ONLY the numbers')
box = tools.Geometry.normalized_to_pixel([float(v) for v in answer.split()], img.width, img.height)
# check
assert box_iou(box, TRUTH['boxes']['table'][img.frame_index]) > 0.9
"""),
    ("mc_video_index_2", """
f = InputImages_2[0].frame_index
v2 = tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][f]], ['chair'], video_index=2)
# check
assert v2.frame_indices == InputImages_2.frame_indices
for fi in v2.frame_indices:
    assert box_iou(mask_box(v2.get_mask(fi, 'chair')), TRUTH['boxes']['chair'][fi]) > 0.6
"""),
    ("mc_video_index_default_is_the_first", """
f = InputImages_1[0].frame_index
v1 = tools.SAM3.segment_video_by_box([TRUTH['boxes']['table'][f]], ['table'])
# check
assert v1.frame_indices == InputImages_1.frame_indices
"""),
    ("mc_video_index_window", """
start = InputImages_2[1].frame_index
v = tools.SAM3.segment_video_by_box([TRUTH['boxes']['table'][start]], ['table'], start_frame=start, end_frame=start + 2,
                                    video_index=2)
# check
assert v.frame_indices == InputImages_2.frame_indices[1:3]
"""),
    ("mc_video_index_out_of_range", """
try:
    tools.SAM3.segment_video_by_text(['chair'], video_index=3)
    message = ''
except ValueError as err:
    message = str(err)
# check
assert 'video_index 3' in message and 'InputImages_1..2' in message
"""),
    ("mc_track_across_both_cameras", """
f = InputImages_1[0].frame_index
both = tools.SAM3.segment_video_by_box([TRUTH['boxes']['chair'][f]], ['chair'], frame_indices=InputImages.frame_indices,
                                       prompt_frame_idx=f)
# check
assert both.frame_indices == InputImages.frame_indices
assert box_iou(mask_box(both.get_mask(InputImages_2[0].frame_index, 'chair')), TRUTH['boxes']['chair'][InputImages_2[0].frame_index]) > 0.5
"""),
    ("mc_slices_of_one_camera", """
tail = InputImages_2[1:]
one = tools.Reconstruct.Reconstruct(InputImages_2)
# check
assert tail.frame_indices == [101, 102] and one.frame_indices == [100, 101, 102]
"""),
    ("mc_is_object_exist_per_camera", """
front = tools.SAM3.is_object_exist(list(InputImages_1), 'trash can')
side = tools.SAM3.is_object_exist(list(InputImages_2), 'trash can')
# check
assert all(front['exists']) and not any(side['exists'])
"""),
    ("mc_video_text_second_camera", """
t2 = tools.SAM3.segment_video_by_text(['table'], labels=['table'], video_index=2)
# check
assert t2.frame_indices == InputImages_2.frame_indices
assert box_iou(mask_box(t2.get_mask(101, 'table')), TRUTH['boxes']['table'][101]) > 0.5
"""),
    ("mc_time_and_bev", """
secs = [tools.Time.frame_to_seconds(fi) for fi in InputImages.frame_indices]
bev = recon.render_bev(ref_frame=InputImages_2[0].frame_index)
# check
assert np.allclose(secs, [TRUTH['seconds'][fi] for fi in InputImages.frame_indices]) and 'side' not in bev.source
"""),
)

IMAGES = _session(
    "images",
    ("is_metadata", """
print(Metadata.is_video, Metadata.fps, Metadata.videos, Metadata.num_videos, Metadata.video_source, Metadata.total_frames)
# check
assert Metadata.is_video is False and Metadata.fps is None and Metadata.videos is None and Metadata.num_videos == 0
assert Metadata.video_source is None and Metadata.total_frames == Metadata.num_images == 3
"""),
    ("is_indices_are_positions", """
# check
assert InputImages.frame_indices == TRUTH['frame_indices'] and InputImages[1].frame_index == TRUTH['frame_indices'][1]
"""),
    ("is_reconstruct_and_bev", """
recon = tools.Reconstruct.Reconstruct(InputImages)
seg = tools.SAM3.segment_image_by_box(InputImages[0], TRUTH['boxes']['cabinet'][InputImages[0].frame_index], 'cabinet')
bev = recon.render_bev(masks=seg)
show(bev)
# check
assert 'cabinet' in bev.description and bev.source == 'Reconstruction.render_bev'
""", {"images": 1}),
    ("is_locate_and_segment_every_image", """
areas = []
for img in InputImages:
    answer = vlm.locate(img, 'Where is the chair? Box x1 y1 x2 y2.')
    if 'Not visible' in answer:
        continue
    nums = [float(v) for v in answer.split()]
    seg = tools.SAM3.segment_image_by_box(img, tools.Geometry.normalized_to_pixel(nums, img.width, img.height), 'chair')
    areas.append(tools.Mask.area(seg.get_mask(img.frame_index)))
# check
assert len(areas) == 3 and all(a > 500 for a in areas)
"""),
    ("is_time_without_fps", """
secs = [tools.Time.frame_to_seconds(fi) for fi in InputImages.frame_indices]
# check
assert np.allclose(secs, [TRUTH['seconds'][fi] for fi in InputImages.frame_indices])
"""),
    ("is_draw_and_ask", """
drawn = tools.Draw.draw_bbox(InputImages[1], TRUTH['boxes']['sofa'][InputImages[1].frame_index], colors='lime')
reply = vlm.ask_with_thinking(drawn, 'What is inside the green box?')
show(drawn)
# check
assert isinstance(reply, str)
""", {"images": 1}),
    ("is_answer", """
ReturnAnswer('yes')
""", {"answer": "yes"}),
)

CELLS: list[Cell] = LIVING + CAMERAS + IMAGES
