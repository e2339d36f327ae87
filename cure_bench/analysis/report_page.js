(function(){
'use strict';
const D=JSON.parse(document.getElementById('cure-data').textContent);
const S=D.strings, str=i=>i<0?'(none)':S[i];
const app=document.getElementById('app');
function el(tag,attrs,...kids){const e=document.createElement(tag);
  for(const k in (attrs||{})){if(k==='text')e.textContent=attrs[k];else if(k==='cls')e.className=attrs[k];
    else if(k.startsWith('on'))e.addEventListener(k.slice(2),attrs[k]);else e.setAttribute(k,attrs[k]);}
  for(const c of kids){if(c!=null)e.appendChild(typeof c==='string'?document.createTextNode(c):c);}return e;}
function table(header,rows,cls){const t=el('table',{cls:cls||''});const h=el('tr');
  header.forEach(x=>h.appendChild(el('th',{text:x})));t.appendChild(el('thead',null,h));const b=el('tbody');
  rows.forEach(r=>{const tr=el('tr');r.forEach((x,i)=>tr.appendChild(el('td',{text:x,cls:i?'num':''})));b.appendChild(tr);});
  t.appendChild(b);return t;}
app.appendChild(el('h1',{text:'CURE evaluation report'}));
app.appendChild(el('p',{text:'Generated '+D.generated+' by cure-toolkit '+D.version+
  '. Same numbers as report.md (one computation); full precision in analysis.json.'}));
app.appendChild(el('h2',{text:'Runs'}));
const keys=D.runs.length?Object.keys(D.runs[0].manifest):[];
app.appendChild(table(['',...D.names],keys.map(k=>[k,...D.runs.map(r=>r.manifest[k])]),'manifest'));
app.appendChild(el('h2',{text:'Metrics, % with '+D.level+'% bootstrap CI'}));
const mt=table(['metric',...D.names],D.metrics.map(([l,c])=>[l==='tasks'?'\u21b3 tasks':l,...c]),'metrics');
mt.id='metrics';mt.querySelectorAll('tbody tr').forEach((tr,i)=>{if(D.metrics[i][0]==='tasks')tr.className='sub';});
app.appendChild(mt);
for(const [b,o,rows] of D.differences){app.appendChild(el('h2',{text:'Paired difference: '+o+' minus '+b}));
  app.appendChild(table(['metric','difference (pp) [CI]','shared tasks'],rows));}
const figs=el('div',{cls:'figs'});if(D.bars)figs.appendChild(el('img',{src:D.bars,alt:'per dataset'}));
D.runs.forEach(r=>r.figures.forEach(([cap,uri])=>figs.appendChild(el('img',{src:uri,alt:r.name+': '+cap,title:r.name+': '+cap}))));
app.appendChild(el('h2',{text:'Plots'}));app.appendChild(figs);
// ---- task table: one row per task id, a status column per run
const ids=[],seen=new Set();const byRun=D.runs.map(r=>{const m=new Map();r.tasks.forEach(t=>{m.set(t.id,t);if(!seen.has(t.id)){seen.add(t.id);ids.push(t.id);}});return m;});
const FILTERS=[['all','all tasks',()=>true],['solved','solved by BoN',t=>t.f.solved],['unsolved','unsolved by BoN',t=>!t.f.solved],
 ['notest','no parsable test',t=>t.f.notest],['allwrong','all programs wrong',t=>t.f.allwrong],
 ['badtest','tester wrote wrong tests',t=>t.f.badtest],['refine','has a refine trajectory',t=>!!t.tr]];
let filter='all',query='',sortKey='id',sortDir=1;
app.appendChild(el('h2',{text:'Tasks'}));
const fdiv=el('div',{id:'filters'});
FILTERS.forEach(([k,label])=>fdiv.appendChild(el('button',{'data-filter':k,text:label,cls:k==='all'?'on':'',onclick:()=>{
  filter=k;fdiv.querySelectorAll('button').forEach(b=>b.classList.toggle('on',b.dataset.filter===k));rerender();}})));
fdiv.appendChild(el('input',{id:'search',placeholder:'task id contains\u2026',oninput:e=>{query=e.target.value;rerender();}}));
const count=el('span',{id:'count'});fdiv.appendChild(count);app.appendChild(fdiv);
const cols=[['id','task']];D.names.forEach((n,i)=>{cols.push(['c'+i,n+': correct programs']);cols.push(['s'+i,n+': BoN']);
  cols.push(['g'+i,n+': tests ok']);});
const tt=el('table',{id:'tasks'});const hr=el('tr');
cols.forEach(([k,l])=>hr.appendChild(el('th',{text:l,'data-key':k,onclick:()=>{sortDir=sortKey===k?-sortDir:1;sortKey=k;rerender();}})));
tt.appendChild(el('thead',null,hr));const tb=el('tbody');tt.appendChild(tb);app.appendChild(tt);
const sentinel=el('div',{id:'more',text:''});app.appendChild(sentinel);
const sum=a=>a.reduce((x,y)=>x+y,0);
function val(id,k){if(k==='id')return id;const i=+k.slice(1),t=byRun[i].get(id);if(!t)return -1;
  if(k[0]==='c')return sum(t.ok);if(k[0]==='s')return t.f.solved?1:0;return sum(t.tok);}
let rows=[],shown=0;const BATCH=100;
function rerender(){
  rows=ids.filter(id=>id.toLowerCase().includes(query.toLowerCase())&&matches(id));
  rows.sort((a,b)=>{const x=val(a,sortKey),y=val(b,sortKey);return (x<y?-1:x>y?1:0)*sortDir;});
  tb.textContent='';shown=0;more();count.textContent=' '+rows.length+' of '+ids.length+' tasks';}
function matches(id){// a task matches a filter when it matches in any run
  const pred=FILTERS.find(f=>f[0]===filter)[2];return byRun.some(m=>{const t=m.get(id);return !!t&&pred(t);});}
function more(){const end=Math.min(rows.length,shown+BATCH);
  for(;shown<end;shown++){const id=rows[shown];const tr=el('tr',{'data-task':id});
    cols.forEach(([k])=>{const v=val(id,k);let txt=String(v),cls='num';
      if(k==='id'){cls='';}else if(v<0){txt='-';}
      else if(k[0]==='s'){txt=v?'yes':'no';cls=v?'yes':'no';}
      else{const t=byRun[+k.slice(1)].get(id);txt=v+'/'+(k[0]==='c'?t.ok.length:t.tok.length);}
      tr.appendChild(el('td',{text:txt,cls:cls}));});
    tr.addEventListener('click',()=>toggle(tr,id));tb.appendChild(tr);}}
new IntersectionObserver(es=>{if(es.some(e=>e.isIntersecting)&&shown<rows.length)more();}).observe(sentinel);
function toggle(tr,id){const nx=tr.nextSibling;if(nx&&nx.classList&&nx.classList.contains('detailrow')){nx.remove();return;}
  const td=el('td',{colspan:String(cols.length)});td.appendChild(detail(id));
  tr.parentNode.insertBefore(el('tr',{cls:'detailrow'},td),nx);}
function grid(title,rowsS,t,rankPick){const g=el('table',{cls:'grid'});
  const cap=el('caption',{text:title});g.appendChild(cap);
  rowsS.forEach((r,i)=>{const tr=el('tr');tr.appendChild(el('th',{text:'p'+i+(t.ok[i]?' \u2713':'')+(rankPick.includes(i)?' \u2605':'')}));
    for(let j=0;j<r.length;j++)tr.appendChild(el('td',{cls:'v'+r[j],title:'program '+i+', test '+j+': '+D.verdicts[+r[j]]}));
    tr.appendChild(el('td',{text:String([...r].filter(c=>c==='0').length),cls:'num'}));g.appendChild(tr);});
  return g;}
function details(summary,body){const d=el('details');d.appendChild(el('summary',{text:summary}));d.appendChild(body);return d;}
function panel(name,t){const p=el('div',{cls:'runpanel'});p.appendChild(el('h3',{text:name}));
  const picks=Object.values(t.pk).map(x=>x.pick);
  p.appendChild(el('p',{text:sum(t.ok)+' of '+t.ok.length+' programs correct; '+sum(t.tok)+' of '+t.tok.length+
    ' generated tests passed by every correct program. \u2713 correct, \u2605 picked by some ranker.'}));
  const lg=el('div',{cls:'legend'});D.verdicts.forEach((v,i)=>{lg.appendChild(el('span',{cls:'v'+i}));lg.appendChild(document.createTextNode(v));});
  p.appendChild(lg);
  p.appendChild(grid('hidden tests (last column: passes)',t.h,t,picks));
  p.appendChild(grid('generated tests (last column: passes)',t.g,t,picks));
  const rk=[];for(const [r,x] of Object.entries(t.pk)){const g=t.g[x.pick]||'';
    rk.push([r,'p'+x.pick,t.ok[x.pick]?'correct':'wrong',String([...g].filter(c=>c==='0').length)+'/'+g.length,
      x.w.map((w,i)=>w>0?'p'+i+':'+w:null).filter(Boolean).join(' ')]);}
  p.appendChild(el('h4',{text:'Rankers: the program each submits, and why'}));
  p.appendChild(rk.length?table(['ranker','pick','verdict','generated tests passed','weight per program'],rk,'rankers')
    :el('p',{text:'no ranking: the task has no generated test or no hidden test'}));
  p.appendChild(el('h4',{text:'Generated tests'}));
  const tl=el('div');t.t.forEach((io,j)=>{const ok=t.tok[j];const g=t.g.map(r=>r[j]==='0'?1:0);
    const body=el('div',null,el('b',{text:'input'}),el('pre',{text:str(io[0])}),el('b',{text:'expected output'}),el('pre',{text:str(io[1])}));
    tl.appendChild(details('test '+j+': '+(ok?'every correct program passes':'a correct program FAILS it (wrong test)')+
      '; passed by '+sum(g)+'/'+g.length+' programs',body));});
  p.appendChild(tl);
  p.appendChild(el('h4',{text:'Programs'}));
  t.p.forEach((pi,i)=>p.appendChild(details('program '+i+(t.ok[i]?' (correct)':''),el('pre',{text:str(pi)}))));
  if(t.a){p.appendChild(el('h4',{text:'Raw coder answers'}));t.a.forEach((a,i)=>p.appendChild(details('answer '+i,el('pre',{text:str(a),cls:'answer'}))));}
  if(t.ta){p.appendChild(el('h4',{text:'Raw tester answers'}));t.ta.forEach((a,i)=>p.appendChild(details('tester answer '+i,el('pre',{text:str(a)}))));}
  if(t.tr){p.appendChild(el('h4',{text:'Refine trajectory'}));const ol=el('ol',{cls:'trajectory'});
    t.tr.forEach(r=>{const li=el('li');const bits=['round '+r.round];
      ['passed','total','correct','hidden_pass','generated_pass'].forEach(k=>{if(k in r)bits.push(k+'='+r[k]);});
      li.appendChild(el('span',{text:bits.join(', ')}));
      ['program','answer','feedback','extra','note'].forEach(k=>{if(k in r)li.appendChild(details(k,el('pre',{text:str(r[k])})));});
      ol.appendChild(li);});p.appendChild(ol);}
  return p;}
function detail(id){const wrap=el('div',{cls:'detail'});let q=null;
  D.runs.forEach((r,i)=>{const t=byRun[i].get(id);if(!t)return;if(q===null){q=str(t.q);}wrap.appendChild(panel(r.name,t));});
  const box=el('div');box.appendChild(el('h3',{text:'Task '+id}));box.appendChild(details('question',el('pre',{text:q||''})));
  box.firstChild.nextSibling.open=true;box.appendChild(wrap);return box;}
rerender();
document.body.setAttribute('data-ready','1');
})();
