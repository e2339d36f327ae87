(async function(){
'use strict';
// Everything from a run is untrusted: it reaches the DOM only through textContent and attribute values.
const D=JSON.parse(document.getElementById('cure-data').textContent);
const app=document.getElementById('app');
// the string pool (questions, programs, tests, answers) travels gzipped in base64: unpack it once
async function unpack(id){const b64=document.getElementById(id).textContent,bin=atob(b64),n=bin.length,bytes=new Uint8Array(n);
  for(let i=0;i<n;i++)bytes[i]=bin.charCodeAt(i);
  const stream=new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return JSON.parse(await new Response(stream).text());}
let S;
try{S=await unpack('cure-strings');}catch(e){
  document.getElementById('loading').textContent='Could not unpack the report in this browser ('+e+'). '+
    'Open it in Chrome/Edge 80+, Firefox 113+ or Safari 16.4+.';return;}
app.textContent='';
const str=i=>(i==null||i<0)?'(none)':S[i];
function el(tag,attrs,...kids){const e=document.createElement(tag);
  for(const k in (attrs||{})){const v=attrs[k];if(v==null)continue;if(k==='text')e.textContent=v;else if(k==='cls')e.className=v;
    else if(k.startsWith('on'))e.addEventListener(k.slice(2),v);else e.setAttribute(k,v);}
  for(const c of kids){if(c!=null)e.appendChild(typeof c==='string'?document.createTextNode(c):c);}return e;}
function table(header,rows,cls,id){const t=el('table',{cls:cls||'',id:id});const h=el('tr');
  header.forEach(x=>h.appendChild(el('th',{text:x})));t.appendChild(el('thead',null,h));const b=el('tbody');
  rows.forEach(r=>{const tr=el('tr');r.forEach((x,i)=>tr.appendChild(el('td',{text:x,cls:i?'num':''})));b.appendChild(tr);});
  t.appendChild(b);return t;}
// <details> whose body is built only when first opened (a task's raw answers can be megabytes)
function details(summary,build,cls){const d=el('details',{cls:cls});d.appendChild(el('summary',{text:summary}));
  let built=false;d.addEventListener('toggle',()=>{if(d.open&&!built){built=true;d.appendChild(build());}});return d;}
const pre=(text,cls)=>()=>el('pre',{text:text,cls:cls});
const sum=a=>a.reduce((x,y)=>x+y,0);
const passes=r=>{let n=0;for(const c of r)if(c==='0')n++;return n;};

// ---- headline: manifest, metrics (report.md's rows), BoN per task, refinement rounds, plots
app.appendChild(el('h1',{text:'CURE evaluation report'}));
app.appendChild(el('p',{text:'Generated '+D.generated+' by cure-toolkit '+D.version+
  '. Same numbers as report.md (one computation); full precision in analysis.json.'}));
const nav=el('nav');app.appendChild(nav);
function section(id,title){const h=el('h2',{id:'s-'+id,text:title});nav.appendChild(el('a',{href:'#s-'+id,text:title}));app.appendChild(h);return h;}
section('runs','Runs');
const keys=D.runs.length?Object.keys(D.runs[0].manifest):[];
const man=table(['',...D.names],keys.map(k=>[k,...D.runs.map(r=>r.manifest[k])]),'manifest','manifest');
app.appendChild(man);
D.runs.forEach(r=>app.appendChild(details('full manifest: '+r.name,pre(r.full_manifest,'manifest-json'))));
section('metrics','Metrics');
app.appendChild(el('p',{text:'%, with '+D.level+'% bootstrap CI over tasks; ↳ tasks: how many tasks each number rests on.'}));
const mt=table(['metric',...D.names],D.metrics.map(([l,c])=>[l==='tasks'?'↳ tasks':l,...c]),'metrics','metrics');
mt.querySelectorAll('tbody tr').forEach((tr,i)=>{if(D.metrics[i][0]==='tasks')tr.className='sub';});
app.appendChild(mt);
for(const [b,o,rows] of D.differences){app.appendChild(el('h3',{text:'Paired difference: '+o+' minus '+b}));
  app.appendChild(table(['metric','difference (pp) [CI]','shared tasks'],rows));}
if(D.runs.some(r=>r.picks.length)){section('picks','Best-of-N per task');
  app.appendChild(el('p',{text:'The paper’s pick per task. Missed: a correct program was among the first N, but the '+
    'generated tests led the pick to a wrong one. Open a task below for its pass counts and every ranker’s pick.'}));
  D.runs.forEach((r,i)=>{if(!r.picks.length)return;app.appendChild(el('h3',{text:r.name}));
    app.appendChild(table(D.pick_header,r.picks,'picks','picks'+i));});}
if(D.runs.some(r=>r.rounds)){section('rounds','Refinement rounds');
  D.runs.forEach((r,i)=>{if(!r.rounds)return;app.appendChild(el('h3',{text:r.name+' ('+r.refine_dir+')'}));
    app.appendChild(table(D.round_header,r.rounds,'rounds','rounds'+i));});}
section('plots','Plots');
const figs=el('div',{cls:'figs'});if(D.bars)figs.appendChild(el('img',{src:D.bars,alt:'per dataset'}));
D.runs.forEach(r=>r.figures.forEach(([cap,uri])=>figs.appendChild(el('img',{src:uri,alt:r.name+': '+cap,title:r.name+': '+cap}))));
figs.addEventListener('click',e=>{if(e.target.tagName==='IMG')e.target.classList.toggle('big');});
app.appendChild(el('p',{text:'Click a plot to enlarge it.'}));app.appendChild(figs);

// ---- task table: one row per task id, columns per run; rendered in batches as it scrolls
const ids=[],seen=new Set();
const byRun=D.runs.map(r=>{const m=new Map();r.tasks.forEach(t=>{m.set(t.id,t);if(!seen.has(t.id)){seen.add(t.id);ids.push(t.id);}});return m;});
const fixed=t=>!!t.tr&&t.tr.some(vs=>vs[0][2]===0&&vs[vs.length-1][2]===1);
const FILTERS=[['all','all tasks',()=>true],['solved','solved by BoN',t=>t.f.solved===1],
 ['unsolved','unsolved by BoN',t=>t.f.solved===0],['missed','BoN missed a correct program',t=>!!t.f.missed],
 ['notest','no parsable test',t=>!!t.f.notest],['allwrong','all programs wrong',t=>!!t.f.allwrong],
 ['badtest','tester wrote wrong tests',t=>!!t.f.badtest]];
if(D.runs.some(r=>r.rounds)){FILTERS.push(['refined','fixed by refinement (wrong at round 0, right at the end)',fixed]);}
let filter='all',query='',sortKey='id',sortDir=1;
section('tasks','Tasks');
app.appendChild(el('p',{text:'A filter keeps a task when it holds in some run. Click a row for its programs, tests and picks.'}));
const fdiv=el('div',{id:'filters'});
FILTERS.forEach(([k,label])=>fdiv.appendChild(el('button',{'data-filter':k,text:label,cls:k==='all'?'on':'',onclick:()=>{
  filter=k;fdiv.querySelectorAll('button').forEach(b=>b.classList.toggle('on',b.dataset.filter===k));rerender();}})));
fdiv.appendChild(el('input',{id:'search',placeholder:'task id or question contains\u2026',oninput:e=>{query=e.target.value.toLowerCase();rerender();}}));
const count=el('span',{id:'count'});fdiv.appendChild(count);app.appendChild(fdiv);
const cols=[['id','task']];D.runs.forEach((r,i)=>{const p=D.runs.length>1?r.name+': ':'';cols.push(['c'+i,p+'correct programs']);
  cols.push(['s'+i,p+'BoN '+(r.headline||'')]);cols.push(['g'+i,p+'tests right']);});
const tt=el('table',{id:'tasks'});const hr=el('tr');
cols.forEach(([k,l])=>hr.appendChild(el('th',{text:l,'data-key':k,title:'sort',onclick:()=>{sortDir=sortKey===k?-sortDir:1;sortKey=k;rerender();}})));
tt.appendChild(el('thead',null,hr));const tb=el('tbody');tt.appendChild(tb);app.appendChild(tt);
const sentinel=el('div',{id:'more'});app.appendChild(sentinel);
function val(id,k){if(k==='id')return id;const t=byRun[+k.slice(1)].get(id);if(!t)return -2;
  if(k[0]==='c')return sum(t.ok);if(k[0]==='s')return t.f.solved;return t.tok?sum(t.tok):-1;}
function text(id,k){const v=val(id,k);if(k==='id')return [v,''];if(v===-2)return ['','num'];
  const t=byRun[+k.slice(1)].get(id);
  if(k[0]==='s')return v<0?['-','num']:[v?'yes':'no',v?'yes num':'no num'];
  if(k[0]==='c')return [v+'/'+t.ok.length,'num'];return v<0?['-','num']:[v+'/'+t.tok.length,'num'];}
const questionOf=id=>{for(const m of byRun){const t=m.get(id);if(t)return str(t.q).toLowerCase();}return '';};
let rows=[],shown=0;const BATCH=100;
function matches(id){const pred=FILTERS.find(f=>f[0]===filter)[2];return byRun.some(m=>{const t=m.get(id);return !!t&&pred(t);});}
function rerender(){
  rows=ids.filter(id=>(!query||id.toLowerCase().includes(query)||questionOf(id).includes(query))&&matches(id));
  rows.sort((a,b)=>{const x=val(a,sortKey),y=val(b,sortKey);return (x<y?-1:x>y?1:0)*sortDir;});
  tb.textContent='';shown=0;more();count.textContent=' '+rows.length+' of '+ids.length+' tasks';}
function more(){const end=Math.min(rows.length,shown+BATCH);
  for(;shown<end;shown++){const id=rows[shown];const tr=el('tr',{'data-task':id});
    cols.forEach(([k])=>{const [txt,cls]=text(id,k);tr.appendChild(el('td',{text:txt,cls:cls}));});
    tr.addEventListener('click',()=>toggle(tr,id));tb.appendChild(tr);}}
new IntersectionObserver(es=>{if(es.some(e=>e.isIntersecting)&&shown<rows.length)more();},{rootMargin:'400px'}).observe(sentinel);
function toggle(tr,id){const nx=tr.nextSibling;if(nx&&nx.classList&&nx.classList.contains('detailrow')){nx.remove();return;}
  const td=el('td',{colspan:String(cols.length)});td.appendChild(detail(id));
  tr.parentNode.insertBefore(el('tr',{cls:'detailrow'},td),nx);}

// ---- one task: the question once, then a panel per run (side by side)
function detail(id){const wrap=el('div',{cls:'detail'});let q=null;
  D.runs.forEach((r,i)=>{const t=byRun[i].get(id);if(!t)return;if(q===null)q=str(t.q);wrap.appendChild(panel(r,t));});
  const box=el('div',{cls:'task','data-task':id});box.appendChild(el('h3',{text:'Task '+id}));
  const qd=details('question',pre(q||''));qd.open=true;box.appendChild(qd);box.appendChild(wrap);return box;}
function grid(title,rowsS,t,star,testOk){const box=el('div',{cls:'gridbox'});box.appendChild(el('div',{cls:'cap',text:title}));
  const g=el('table',{cls:'grid'});box.appendChild(g);
  if(testOk&&rowsS.length){const h=el('tr');h.appendChild(el('th'));for(let j=0;j<rowsS[0].length;j++)
    h.appendChild(el('th',{text:testOk[j]?'':'\u2717',title:'test '+j+(testOk[j]?'':': a correct program fails it (wrong test)')}));
    g.appendChild(h);}
  rowsS.forEach((r,i)=>{const tr=el('tr');tr.appendChild(el('th',{text:'p'+i+(t.ok[i]?' \u2713':'')+(i===star?' \u2605':'')}));
    for(let j=0;j<r.length;j++)tr.appendChild(el('td',{cls:'v'+r[j],title:'program '+i+', test '+j+': '+D.verdicts[+r[j]]}));
    tr.appendChild(el('td',{text:String(passes(r)),cls:'num'}));g.appendChild(tr);});
  return box;}
function rankers(t){const rk=[];
  for(const [key,[ps,byR]] of Object.entries(t.bn)){for(const [r,[pick,acc,w]] of Object.entries(byR)){
    const spread=w.map((x,i)=>x>0&&x<1?'p'+i+' '+Math.round(100*x)+'%':null).filter(Boolean).join(', ');
    rk.push([key,r,'p'+pick,t.ok[pick]?'correct':'wrong',ps[pick]+' of '+(t.g[0]||'').slice(0,+key.split('x')[1]).length,
      ps.map((n,i)=>'p'+i+':'+n).join(' '),spread?spread+' (expected acc '+Math.round(100*acc)+'%)':'-']);}}
  return rk;}
function panel(r,t){const p=el('div',{cls:'runpanel'});p.appendChild(el('h3',{text:r.name}));
  const cell=r.headline&&t.bn[r.headline],star=cell?cell[1].cure_first[0]:-1;
  const tok=t.tok?sum(t.tok)+' of '+t.tok.length+' generated tests passed by every correct program':
    'no correct program, so no generated test can be called right or wrong';
  p.appendChild(el('p',{text:sum(t.ok)+' of '+t.ok.length+' programs correct; '+tok+'. \u2713 correct, \u2605 the paper\u2019s BoN '+
    (r.headline||'')+' pick, \u2717 a wrong generated test.'+(t.f.dropped?' Left out of every metric by the protocol ('+t.f.dropped+').':'')}));
  const lg=el('div',{cls:'legend'});D.verdicts.forEach((v,i)=>{lg.appendChild(el('span',{cls:'v'+i}));lg.appendChild(document.createTextNode(v));});
  p.appendChild(lg);
  p.appendChild(grid('hidden tests (last column: passes)',t.h,t,star,null));
  if(t.g.length&&t.g[0].length)p.appendChild(grid('generated tests (last column: passes)',t.g,t,star,t.tok));
  p.appendChild(el('h4',{text:'Rankers: the program each submits, and why'}));
  const rk=rankers(t);
  p.appendChild(rk.length?table(['cell','ranker','pick','verdict','tests the pick passes','passes per program (first N, first M tests)',
    'weight among ties'],rk,'rankers'):el('p',{text:'no ranking: the task has no program or no hidden test'}));
  p.appendChild(el('h4',{text:'Generated tests'}));
  t.t.forEach((io,j)=>{const ok=t.tok?t.tok[j]:null;const n=sum(t.g.map(row=>row[j]==='0'?1:0));
    const verdict=ok==null?'no correct program to check it':ok?'every correct program passes':'a correct program FAILS it (wrong test)';
    p.appendChild(details('test '+j+' (tester answer '+(t.ti[j]>=0?t.ti[j]:'?')+'): '+verdict+'; passed by '+n+'/'+t.g.length+' programs',
      ()=>el('div',null,el('b',{text:'input'}),el('pre',{text:str(io[0])}),el('b',{text:'expected output'}),el('pre',{text:str(io[1])}))));});
  if(!t.t.length)p.appendChild(el('p',{text:'no parsable generated test'}));
  p.appendChild(el('h4',{text:'Programs'}));
  t.p.forEach((pi,i)=>p.appendChild(details('program '+i+(t.ok[i]?' (correct)':'')+(pi<0?' (nothing extracted)':''),pre(str(pi),'program'))));
  const meta=a=>(a[1]!=null?', '+a[1]+' tokens':'')+(a[2]?', '+a[2]:'');
  if(t.a){p.appendChild(el('h4',{text:'Raw coder answers'}));
    t.a.forEach((a,i)=>p.appendChild(details('answer '+i+meta(a),pre(str(a[0]),'answer'),'raw')));}
  if(t.ta){p.appendChild(el('h4',{text:'Raw tester answers'}));
    t.ta.forEach((a,i)=>{const used=t.ti.map((x,j)=>x===i?j:-1).filter(j=>j>=0);
      p.appendChild(details('tester answer '+i+meta(a)+': '+(used.length?'test '+used.join(', '):'no parsable test (dropped)'),pre(str(a[0]),'answer'),'raw'));});}
  if(t.tr)p.appendChild(trajectory(t));
  return p;}
// refine: per program, its version at each round (hidden verdict, generated passes); details hold code and feedback
function trajectory(t){const box=el('div',{cls:'trajectory'});box.appendChild(el('h4',{text:'Refinement trajectory'}));
  const last=Math.max(0,...t.tr.map(vs=>vs[vs.length-1][0]));const g=el('table',{cls:'rounds'});const h=el('tr');
  h.appendChild(el('th',{text:'program'}));for(let r=0;r<=last;r++)h.appendChild(el('th',{text:'round '+r}));g.appendChild(h);
  t.tr.forEach((vs,i)=>{const tr=el('tr');tr.appendChild(el('th',{text:'p'+i}));
    for(let r=0;r<=last;r++){const v=vs.find(x=>x[0]===r);
      if(!v){tr.appendChild(el('td',{text:'=',title:'unchanged'}));continue;}
      const mark=v[2]<0?'?':v[2]?'\u2713':'\u2717';
      tr.appendChild(el('td',{text:mark+' '+passes(v[3])+'/'+v[3].length,cls:v[2]===1?'yes':v[2]===0?'no':'',
        title:'hidden '+(v[2]===1?'correct':'wrong')+', generated tests passed '+passes(v[3])+' of '+v[3].length}));}
    g.appendChild(tr);});
  box.appendChild(g);
  t.tr.forEach((vs,i)=>vs.forEach(v=>box.appendChild(details('p'+i+' round '+v[0]+': '+(v[2]===1?'correct':'wrong')+
    (v[4].length?', repaired from '+v[4].length+' failing test(s)':'')+(v[5]!=null?', '+v[5]+' tokens':''),()=>{
      const d=el('div');d.appendChild(el('pre',{text:str(v[1]),cls:'program'}));
      v[4].forEach((f,k)=>{d.appendChild(el('b',{text:'feedback '+k+' ('+str(f[5])+' test, '+str(f[3])+')'}));
        d.appendChild(el('pre',{text:'input:\n'+str(f[0])+'\nexpected:\n'+str(f[1])+'\nprinted:\n'+(f[2]<0?'(did not finish)':str(f[2]))+
          (f[4]>=0&&S[f[4]]?'\nstderr:\n'+str(f[4]):''),cls:'feedback'}));});
      return d;},'version'))));
  return box;}
rerender();
document.body.setAttribute('data-ready','1');
})();
